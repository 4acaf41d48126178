"""``example-causal-conv``: gated, dilated, causal depthwise convolutions.

Maps ``(batch, length, d_model)`` to ``(batch, length, d_model)``; output ``t`` depends on
inputs ``<= t`` only (left padding, no look-ahead). It has a recurrent mode too (a ring
buffer of past inputs per block), so a language model over it can generate.
"""

from __future__ import annotations

from dataclasses import dataclass

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from .config import CausalConvConfig


@dataclass
class CausalConvState:
    """``t`` and one ``(batch, d_model, (kernel_size - 1) * dilation)`` ring buffer per block
    (its normalised inputs; slot ``t % size`` holds the input at time ``t``)."""

    t: int
    buffers: list[torch.Tensor]


class CausalConvBlock(nn.Module):
    """Pre-norm residual block: depthwise causal conv, GELU, pointwise GLU."""

    def __init__(self, d_model: int, *, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.left_pad = (kernel_size - 1) * dilation
        self.kernel_size, self.dilation = kernel_size, dilation
        self.norm = nn.LayerNorm(d_model)
        self.conv = nn.Conv1d(d_model, d_model, kernel_size, dilation=dilation, groups=d_model)
        self.out = nn.Linear(d_model, 2 * d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(batch, length, d_model)`` -> same shape."""
        h = self.norm(x).transpose(1, 2)  # (batch, d_model, length) for conv1d
        h = self.conv(F.pad(h, (self.left_pad, 0))).transpose(1, 2)
        return x + F.glu(self.out(F.gelu(h)), dim=-1)

    def step(self, x: torch.Tensor, buffer: torch.Tensor, t: int) -> torch.Tensor:
        """One time step ``x (batch, d_model)``; writes this input into ``buffer``."""
        h = self.norm(x)
        size = buffer.shape[-1]
        taps = [
            buffer[..., (t - (self.kernel_size - 1 - j) * self.dilation) % size]
            for j in range(self.kernel_size - 1)
        ]
        window = torch.stack([*taps, h], dim=-1)  # (batch, d_model, kernel_size)
        assert self.conv.bias is not None
        y = (window * self.conv.weight[:, 0]).sum(-1) + self.conv.bias
        buffer[..., t % size] = h
        return x + F.glu(self.out(F.gelu(y)), dim=-1)


class CausalConvBackbone(nn.Module):
    """A stack of :class:`CausalConvBlock` with dilations ``growth ** i``, then LayerNorm."""

    def __init__(
        self, *, d_model: int, n_layers: int, kernel_size: int, dilation_growth: int
    ) -> None:
        super().__init__()
        self.d_model = self.d_output = d_model  # what a language model sizes itself from
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

    def _blocks(self) -> list[CausalConvBlock]:
        return [block for block in self.blocks if isinstance(block, CausalConvBlock)]

    # -- recurrent mode (the Recurrent protocol of ssm-kernels) ---------------------------------
    def setup_step(self, mode: str = "linear") -> None:
        """Nothing to prepare."""

    def default_state(
        self,
        *batch_shape: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> CausalConvState:
        weight = self.norm.weight
        return CausalConvState(
            t=0,
            buffers=[
                torch.zeros(
                    *batch_shape,
                    self.d_model,
                    max(1, block.left_pad),
                    device=device if device is not None else weight.device,
                    dtype=dtype if dtype is not None else weight.dtype,
                )
                for block in self._blocks()
            ],
        )

    def step(self, x: torch.Tensor, state: CausalConvState) -> tuple[torch.Tensor, CausalConvState]:
        """One time step ``x (batch, d_model)``; ``state`` is updated in place."""
        for block, buffer in zip(self._blocks(), state.buffers, strict=True):
            x = block.step(x, buffer, state.t)
        state.t += 1
        out: torch.Tensor = self.norm(x)
        return out, state


def build(config: CausalConvConfig) -> CausalConvBackbone:
    """The backbone a :class:`CausalConvConfig` describes (the record's ``target``)."""
    return CausalConvBackbone(**attrs.asdict(config, recurse=False))
