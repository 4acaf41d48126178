"""Config -> module. The only code here that reads config objects."""

from __future__ import annotations

from .block import S4Block
from .config import KernelConfig, S4Config, S4DConfig
from .kernels import DiagKernel, DPLRKernel, SSMKernel


def build_kernel(config: KernelConfig, *, d_model: int, l_max: int, channels: int = 1) -> SSMKernel:
    """The kernel ``config`` describes, over ``d_model`` channels.

    ``l_max`` is the training sequence length (the S4 kernel is parametrised at that length;
    S4D ignores it). This is the ``target`` of the ``s4`` and ``s4d`` kernel records.
    """
    n_ssm = config.n_ssm or d_model
    if isinstance(config, S4Config):
        return DPLRKernel(
            d_model,
            l_max=l_max,
            d_state=config.d_state,
            init=config.init,
            rank=config.rank,
            channels=channels,
            n_ssm=n_ssm,
            dt_min=config.dt_min,
            dt_max=config.dt_max,
            dt_transform=config.dt_transform,
            lr=config.lr,
            separate_q=config.separate_q,
        )
    if isinstance(config, S4DConfig):
        return DiagKernel(
            d_model,
            d_state=config.d_state,
            init=config.init,
            discretization=config.discretization,
            channels=channels,
            n_ssm=n_ssm,
            dt_min=config.dt_min,
            dt_max=config.dt_max,
            dt_transform=config.dt_transform,
            lr=config.lr,
        )
    raise TypeError(f"expected S4Config or S4DConfig; got {type(config).__name__}")


def build_block(
    config: KernelConfig,
    *,
    d_model: int,
    l_max: int,
    bidirectional: bool = False,
    dropout: float = 0.0,
    transposed: bool = False,
    glu: bool = True,
) -> S4Block:
    """An :class:`S4Block` whose kernel ``config`` describes."""
    kernel = build_kernel(config, d_model=d_model, l_max=l_max, channels=2 if bidirectional else 1)
    return S4Block(
        d_model,
        kernel,
        bidirectional=bidirectional,
        dropout=dropout,
        transposed=transposed,
        glu=glu,
    )
