"""``example-decay``: a state-space kernel with a real, diagonal, decaying state matrix.

Each of the ``H`` channels has ``N`` real modes ``x_n <- a_n x_n + b_n u`` with
``a_n = exp(-dt_n lambda_n)`` in ``(0, 1)``, read out as ``y = sum_n c_n x_n``: an exponential
moving average per mode. Its convolution kernel is ``k_l = sum_n c_n b_n a_n^l``. It follows
ssm-kernels' ``Kernel`` protocol (``forward(L, state, rate)``, ``forward_state``,
``setup_step``, ``default_state``, ``step``), so a SaShiMi model uses it with
``model.kernel.name=example-decay``, in both of its modes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .config import DecayKernelConfig


class DecayKernel(nn.Module):
    """``channels`` output channels over ``d_model`` channels, ``d_state`` real modes each.

    Parameters: ``log_lambda (H, N)`` (decay rates, positive through ``exp``), ``log_dt (H,)``,
    ``b (H, N)``, ``c (channels, H, N)``.
    """

    def __init__(
        self, d_model: int, *, d_state: int, channels: int, dt_min: float, dt_max: float
    ) -> None:
        super().__init__()
        self.H, self.N, self.channels = d_model, d_state, channels
        rates = torch.arange(1, d_state + 1, dtype=torch.float32).expand(d_model, -1)
        self.log_lambda = nn.Parameter(torch.log(rates).clone())
        log_dt = torch.rand(d_model) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)
        self.b = nn.Parameter(torch.ones(d_model, d_state))
        self.c = nn.Parameter(torch.randn(channels, d_model, d_state) / math.sqrt(d_state))

    def _log_a(self, rate: float = 1.0) -> Tensor:  # (H, N), log of the decay per step
        return -(torch.exp(self.log_dt) * rate).unsqueeze(-1) * torch.exp(self.log_lambda)

    def forward(
        self, L: int, state: Tensor | None = None, rate: float = 1.0
    ) -> tuple[Tensor, Tensor | None]:
        """``k (channels, H, L)`` and, given a state ``(batch, H, N)``, what it adds."""
        powers = torch.exp(self._log_a(rate).unsqueeze(-1) * torch.arange(L + 1).to(self.b))
        k = torch.einsum("chn,hn,hnl->chl", self.c, self.b, powers[..., :L])
        if state is None:
            return k, None
        return k, torch.einsum("chn,bhn,hnl->bchl", self.c, state, powers[..., 1:])

    def forward_state(self, u: Tensor, state: Tensor) -> Tensor:
        """The state after ``u (batch, H, L)`` from ``state (batch, H, N)``."""
        L = u.shape[-1]
        log_a = self._log_a()
        decay = torch.exp(log_a.unsqueeze(-1) * torch.arange(L - 1, -1, -1).to(u))  # (H, N, L)
        return torch.exp(L * log_a) * state + self.b * torch.einsum("bhl,hnl->bhn", u, decay)

    def setup_step(self, mode: str = "linear") -> None:
        """Nothing to prepare: the recurrence is diagonal (every mode name is accepted)."""

    def default_state(
        self,
        *batch_shape: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        return torch.zeros(
            *batch_shape,
            self.H,
            self.N,
            device=device if device is not None else self.b.device,
            dtype=dtype if dtype is not None else self.b.dtype,
        )

    def step(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """``u (batch, H)`` -> ``y (batch, channels, H)`` and the next state."""
        x = torch.exp(self._log_a()) * state + self.b * u.unsqueeze(-1)
        return torch.einsum("chn,...hn->...ch", self.c, x), x


def build(config: DecayKernelConfig, *, d_model: int, l_max: int, channels: int) -> DecayKernel:
    """The kernel record's target: what SaShiMi's builder calls for each of its blocks
    (``l_max`` is the tier's training length; this kernel has no use for it)."""
    del l_max
    return DecayKernel(
        d_model,
        d_state=config.d_state,
        channels=channels,
        dt_min=config.dt_min,
        dt_max=config.dt_max,
    )
