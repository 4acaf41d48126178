"""The reference's standalone usage: ``Sashimi(...)``, ``sashimi(x)``, ``setup_rnn()``,
``default_state(batch, device=...)``, ``step(x[:, i], state)``.

:func:`Sashimi` builds the backbone with S4 (or S4D) blocks from plain keyword arguments, as
the reference's standalone ``sashimi.py`` does; runs use the registry and configs instead.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from ssm_kernels.block import S4Block
from ssm_kernels.kernels import DiagKernel, DPLRKernel

from .layers import NormKind
from .sashimi import SaShiMi


def Sashimi(
    d_model: int = 64,
    n_layers: int = 8,
    pool: tuple[int, ...] = (4, 4),
    expand: int = 2,
    ff: int = 2,
    *,
    bidirectional: bool = False,
    glu: bool = True,
    unet: bool = False,
    dropout: float = 0.0,
    d_state: int = 64,
    kernel: Literal["s4", "s4d"] = "s4",
    norm: NormKind = "scalar",
    l_max: int = 16000,
) -> SaShiMi:
    """A SaShiMi backbone ``(batch, length, d_model) -> (batch, length, d_model)``; the
    defaults are the paper's SC09 model (S4 kernels, ``n_ssm`` 1, softplus step sizes)."""
    channels = 2 if bidirectional else 1

    def block(width: int, length: int) -> nn.Module:
        ssm: nn.Module
        if kernel == "s4":
            ssm = DPLRKernel(width, l_max=length, d_state=d_state, channels=channels)
        else:
            ssm = DiagKernel(width, d_state=d_state, init="diag-legs", channels=channels)
        return S4Block(width, ssm, bidirectional=bidirectional, dropout=dropout, glu=glu)

    return SaShiMi(
        d_model,
        n_layers=n_layers,
        pool=pool,
        expand=expand,
        ff=ff,
        block=block,
        norm=norm,
        unet=unet,
        causal=not bidirectional,
        dropout=dropout,
        l_max=l_max,
    )
