"""WaveNet (van den Oord et al. 2016): dilated causal convolutions with gated activations.

The module tree is the reference implementation's WaveNet baseline, so its checkpoints map
onto ours key for key: a 1x1 ``start_conv`` (no bias) from the input width to the residual
width; per layer a dilated ``filter_convs`` / ``gate_convs`` pair (no bias),
``z = tanh(filter) * sigmoid(gate)``, a 1x1 ``residual_convs`` added to the residual stream
and a 1x1 ``skip_convs`` summed into the skip stream (no biases); then
``relu -> end_conv_1 -> relu -> end_conv_2`` (with biases) to ``d_output`` channels.
Layer ``i`` of block ``b`` has dilation ``2**i``.

The convolutions are causal with zero padding, so outputs keep the input's length; the
language model in front (:class:`~audio_models.lm.BackboneLM`) shows ``context`` start tokens
before every sequence (the receptive field minus one), exactly as the reference pads its
inputs, so no output ever sees the padding.

Generation keeps, per layer, a ring buffer of the last ``(kernel_size - 1) * dilation``
residual inputs (the "fast WaveNet" queues), so a step costs one pass through the layers and
never recomputes the receptive field. :meth:`WaveNet.prime` fills the buffers from one
convolutional pass over a context.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class WaveNetState:
    """Recurrent state: ``t`` and one ``(B, C, (k - 1) d)`` ring buffer per layer."""

    t: int
    queues: list[Tensor]


def wavenet_dilations(blocks: int, layers: int) -> tuple[int, ...]:
    """``1, 2, ..., 2**(layers - 1)`` repeated ``blocks`` times."""
    return tuple(2**i for i in range(layers)) * blocks


class WaveNet(nn.Module):
    """``(batch, length, d_model) -> (batch, length, d_output)``, causal.

    Args:
        d_model: input width (the reference feeds a 256-wide embedding).
        d_output: output width (the reference's ``classes``).
        residual_channels, dilation_channels, skip_channels, end_channels: the widths.
        kernel_size: taps of each dilated convolution.
        dilations: one per layer (see :func:`wavenet_dilations`).
    """

    def __init__(
        self,
        d_model: int = 256,
        *,
        d_output: int = 256,
        residual_channels: int = 64,
        dilation_channels: int = 64,
        skip_channels: int = 1024,
        end_channels: int = 512,
        kernel_size: int = 2,
        dilations: Sequence[int] = wavenet_dilations(4, 10),
    ) -> None:
        super().__init__()
        if kernel_size < 2:
            raise ValueError(f"kernel_size must be >= 2; got {kernel_size}")
        self.d_model, self.d_output = d_model, d_output
        self.kernel_size, self.dilations = kernel_size, tuple(dilations)
        self.residual_channels = residual_channels
        self.start_conv = nn.Conv1d(d_model, residual_channels, 1, bias=False)

        def convs(c_in: int, c_out: int, k: int) -> nn.ModuleList:
            return nn.ModuleList(nn.Conv1d(c_in, c_out, k, bias=False) for _ in self.dilations)

        self.filter_convs = convs(residual_channels, dilation_channels, kernel_size)
        self.gate_convs = convs(residual_channels, dilation_channels, kernel_size)
        self.residual_convs = convs(dilation_channels, residual_channels, 1)
        self.skip_convs = convs(dilation_channels, skip_channels, 1)
        self.end_conv_1 = nn.Conv1d(skip_channels, end_channels, 1)
        self.end_conv_2 = nn.Conv1d(end_channels, d_output, 1)

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    @property
    def context(self) -> int:
        """Start tokens a language model shows before each sequence (the receptive field
        minus one), as the reference pads."""
        return self.receptive_field - 1

    def _layers(self) -> list[tuple[nn.Conv1d, nn.Conv1d, nn.Conv1d, nn.Conv1d, int]]:
        return [
            (cast(nn.Conv1d, f), cast(nn.Conv1d, g), cast(nn.Conv1d, r), cast(nn.Conv1d, s), d)
            for f, g, r, s, d in zip(
                self.filter_convs,
                self.gate_convs,
                self.residual_convs,
                self.skip_convs,
                self.dilations,
                strict=True,
            )
        ]

    def _end(self, skip: Tensor) -> Tensor:
        out: Tensor = self.end_conv_2(F.relu(self.end_conv_1(F.relu(skip))))
        return out

    def _gated(self, x: Tensor) -> Iterator[tuple[Tensor, Tensor, nn.Conv1d]]:
        """Per layer, for ``x (B, d_model, L)``: its input ``h``, its gated activation ``z``
        and its skip convolution (the residual stream moves on as the caller asks for more)."""
        h = self.start_conv(x)
        for filt, gate, res, sk, d in self._layers():
            padded = F.pad(h, ((self.kernel_size - 1) * d, 0))
            z = torch.tanh(F.conv1d(padded, filt.weight, dilation=d)) * torch.sigmoid(
                F.conv1d(padded, gate.weight, dilation=d)
            )
            yield h, z, sk
            h = res(z) + h

    def _trunk(self, x: Tensor) -> Tensor:
        """``x (B, d_model, L)`` -> ``(B, d_output, L)``."""
        skip = torch.zeros((), device=x.device, dtype=x.dtype)
        for _, z, sk in self._gated(x):
            skip = skip + sk(z)
        return self._end(skip)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self._trunk(x.transpose(1, 2)).transpose(1, 2)
        return out

    # -- recurrent mode ----------------------------------------------------------------------
    def setup_step(self, mode: Any = "linear") -> None:
        """Nothing to prepare (``mode`` is accepted for a uniform interface)."""

    def default_state(
        self,
        *batch_shape: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> WaveNetState:
        weight = self.start_conv.weight
        device = device if device is not None else weight.device
        dtype = dtype if dtype is not None else weight.dtype
        return WaveNetState(
            t=0,
            queues=[
                torch.zeros(
                    *batch_shape,
                    self.residual_channels,
                    (self.kernel_size - 1) * d,
                    device=device,
                    dtype=dtype,
                )
                for d in self.dilations
            ],
        )

    @torch.no_grad()
    def prime(self, context: Tensor, state: WaveNetState) -> WaveNetState:
        """The state after stepping through ``context (B, T, d_model)`` from ``state`` (a
        fresh one), computed by one convolutional pass."""
        if state.t != 0:
            raise ValueError("prime() starts from a fresh state (default_state)")
        T = context.shape[1]
        # Layer by layer, keeping of each layer's input only what its queue holds, and no
        # skip or end convolutions: a batch of 1024 x 4,092 start tokens fits in memory.
        layers = self._gated(context.transpose(1, 2))
        for (h, _, _), queue in zip(layers, state.queues, strict=True):
            size = queue.shape[-1]
            times = torch.arange(max(0, T - size), T, device=h.device)
            queue[..., times % size] = h[..., times]  # slot tau % size holds h at time tau
        state.t = T
        return state

    def step(self, x: Tensor, state: WaveNetState) -> tuple[Tensor, WaveNetState]:
        """One sample ``x (B, d_model)``; the queues are updated in place."""
        h = self.start_conv(x.unsqueeze(-1))[..., 0]
        skip = torch.zeros((), device=x.device, dtype=x.dtype)
        k, t = self.kernel_size, state.t
        for (filt, gate, res, sk, d), queue in zip(self._layers(), state.queues, strict=True):
            size = queue.shape[-1]
            # Tap j (0 = oldest) of the kernel reads h at t - (k - 1 - j) d.
            taps = [queue[..., (t - (k - 1 - j) * d) % size] for j in range(k - 1)]
            window = torch.stack([*taps, h], dim=-1)  # (B, C, k)
            z = torch.tanh(torch.einsum("bck,ock->bo", window, filt.weight)) * torch.sigmoid(
                torch.einsum("bck,ock->bo", window, gate.weight)
            )
            queue[..., t % size] = h
            skip = skip + sk(z.unsqueeze(-1))[..., 0]
            h = res(z.unsqueeze(-1))[..., 0] + h
        state.t += 1
        out: Tensor = self._end(skip.unsqueeze(-1))[..., 0]
        return out, state
