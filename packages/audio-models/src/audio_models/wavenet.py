"""WaveNet (van den Oord et al. 2016): dilated causal convolutions with gated activations.

Each layer computes ``z = tanh(W_f * h) * sigmoid(W_g * h)`` with a dilated causal
convolution, adds ``W_r z`` to the residual stream and ``W_s z`` to the skip stream. The
output is ``ReLU -> 1x1 -> ReLU`` of the skip sum.

Generation keeps, per layer, a ring buffer of the last ``(kernel_size - 1) * dilation``
residual inputs (the "fast WaveNet" queues), so a step costs one pass through the layers and
never recomputes the receptive field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_DILATIONS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class WaveNetState:
    """Recurrent state: ``t`` and one ``(B, C, (k - 1) d)`` ring buffer per layer."""

    t: int
    queues: list[Tensor]


class WaveNet(nn.Module):
    """``(batch, length, d_model) -> (batch, length, skip_channels)``, causal."""

    def __init__(
        self,
        d_model: int,
        *,
        residual_channels: int = 256,
        dilation_channels: int = 256,
        skip_channels: int = 256,
        kernel_size: int = 2,
        dilations: tuple[int, ...] = DEFAULT_DILATIONS,
    ) -> None:
        super().__init__()
        self.kernel_size, self.dilations = kernel_size, tuple(dilations)
        self.residual_channels = residual_channels
        self.input = nn.Linear(d_model, residual_channels)
        self.convs = nn.ModuleList(
            nn.Conv1d(residual_channels, 2 * dilation_channels, kernel_size, dilation=d)
            for d in self.dilations
        )
        self.residuals = nn.ModuleList(
            nn.Linear(dilation_channels, residual_channels) for _ in self.dilations
        )
        self.skips = nn.ModuleList(
            nn.Linear(dilation_channels, skip_channels) for _ in self.dilations
        )
        self.output = nn.Linear(skip_channels, skip_channels)

    def _convs(self) -> list[nn.Conv1d]:
        return [cast(nn.Conv1d, conv) for conv in self.convs]

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    def _gate(self, z: Tensor) -> Tensor:
        f, g = z.chunk(2, dim=-1)
        return torch.tanh(f) * torch.sigmoid(g)

    def forward(self, x: Tensor) -> Tensor:
        h = self.input(x)  # (B, L, C)
        skip = torch.zeros((), device=x.device, dtype=x.dtype)
        for conv, res, sk, d in zip(
            self._convs(), self.residuals, self.skips, self.dilations, strict=True
        ):
            padded = F.pad(h.transpose(1, 2), ((self.kernel_size - 1) * d, 0))
            z = self._gate(conv(padded).transpose(1, 2))
            skip = skip + sk(z)
            h = h + res(z)
        out: Tensor = F.relu(self.output(F.relu(skip)))
        return out

    def setup_step(self, mode: str = "linear") -> None:
        """Nothing to prepare (``mode`` is accepted for a uniform interface)."""

    def default_state(self, batch: int, *, device: torch.device | None = None) -> WaveNetState:
        weight = self.input.weight
        device = device if device is not None else weight.device
        return WaveNetState(
            t=0,
            queues=[
                torch.zeros(
                    batch,
                    self.residual_channels,
                    (self.kernel_size - 1) * d,
                    device=device,
                    dtype=weight.dtype,
                )
                for d in self.dilations
            ],
        )

    def step(self, x: Tensor, state: WaveNetState) -> tuple[Tensor, WaveNetState]:
        """One sample ``x (B, d_model)``; the queues are updated in place."""
        h = self.input(x)
        skip = torch.zeros((), device=x.device, dtype=x.dtype)
        k, t = self.kernel_size, state.t
        for conv, res, sk, d, queue in zip(
            self._convs(), self.residuals, self.skips, self.dilations, state.queues, strict=True
        ):
            size = queue.shape[-1]
            # Tap j (0 = oldest) of the kernel reads h at t - (k - 1 - j) d.
            taps = [queue[:, :, (t - (k - 1 - j) * d) % size] for j in range(k - 1)]
            window = torch.stack([*taps, h], dim=-1)  # (B, C, k)
            assert conv.bias is not None
            z = self._gate(torch.einsum("bck,ock->bo", window, conv.weight) + conv.bias)
            queue[:, :, t % size] = h
            skip = skip + sk(z)
            h = h + res(z)
        state.t += 1
        out: Tensor = F.relu(self.output(F.relu(skip)))
        return out, state
