"""``example-causal-conv``: gated, dilated, causal depthwise convolutions.

Maps ``(batch, length, d_model)`` to ``(batch, length, d_model)``; output ``t`` depends on
inputs ``<= t`` only (left padding, no look-ahead).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from .config import CausalConvConfig


class CausalConvBlock(nn.Module):
    """Pre-norm residual block: depthwise causal conv, GELU, pointwise GLU."""

    def __init__(self, d_model: int, *, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.left_pad = (kernel_size - 1) * dilation
        self.norm = nn.LayerNorm(d_model)
        self.conv = nn.Conv1d(d_model, d_model, kernel_size, dilation=dilation, groups=d_model)
        self.out = nn.Linear(d_model, 2 * d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(batch, length, d_model)`` -> same shape."""
        h = self.norm(x).transpose(1, 2)  # (batch, d_model, length) for conv1d
        h = self.conv(F.pad(h, (self.left_pad, 0))).transpose(1, 2)
        return x + F.glu(self.out(F.gelu(h)), dim=-1)


class CausalConvBackbone(nn.Module):
    """A stack of :class:`CausalConvBlock` with dilations ``growth ** i``, then LayerNorm."""

    def __init__(
        self, *, d_model: int, n_layers: int, kernel_size: int, dilation_growth: int
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            CausalConvBlock(d_model, kernel_size=kernel_size, dilation=dilation_growth**i)
            for i in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.receptive_field = 1 + (kernel_size - 1) * sum(
            dilation_growth**i for i in range(n_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(batch, length, d_model)`` float -> ``(batch, length, d_model)``."""
        for block in self.blocks:
            x = block(x)
        out: torch.Tensor = self.norm(x)
        return out


def build(config: CausalConvConfig) -> CausalConvBackbone:
    """The backbone a :class:`CausalConvConfig` describes (the record's ``target``)."""
    return CausalConvBackbone(**attrs.asdict(config, recurse=False))
