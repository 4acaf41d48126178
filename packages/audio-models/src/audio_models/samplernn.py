"""SampleRNN (Mehri et al. 2017): frame-level RNN tiers over a sample-level MLP.

With frame sizes ``(F1, F2, ..., Fk)`` (top first), tier ``i`` advances once per ``Fi``
samples. At its step ``j`` it reads the *previous* frame of ``Fi`` samples (as real values in
``[-1, 1]``), adds the conditioning the tier above produced for this step, runs its RNN and
expands the output into one conditioning vector per step of the tier below (``Fi / F(i+1)``
of them, or ``Fk`` for the sample level). The sample-level MLP predicts sample ``t`` from the
embeddings of samples ``t - Fk .. t - 1`` and its conditioning vector. Samples before the
start are the start token, so everything is causal by construction.

Generation runs the same schedule one sample at a time (tier ``i`` steps when ``t % Fi == 0``)
with fixed-shape buffers and RNN states updated in place.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from .lm import AutoregressiveModel


@dataclass
class SampleRNNState:
    """Recurrent state: ``t``, the last ``F1`` samples, per-tier RNN states (``(h,)`` for GRU,
    ``(h, c)`` for LSTM) and per-tier pending conditioning ``(B, steps below, dim)``."""

    t: int
    history: Tensor
    rnn: list[tuple[Tensor, ...]]
    cond: list[Tensor]


class FrameTier(nn.Module):
    """One frame-level tier: frame -> linear, + conditioning, RNN, expand to the tier below."""

    def __init__(self, frame: int, below: int, *, dim: int, n_rnn: int, cell: str) -> None:
        super().__init__()
        self.frame, self.below = frame, below
        self.input = nn.Linear(frame, dim)
        self.rnn: nn.GRU | nn.LSTM = (nn.GRU if cell == "gru" else nn.LSTM)(
            dim, dim, num_layers=n_rnn, batch_first=True
        )
        self.expand = nn.Linear(dim, dim * below)


def _dequantise(x: Tensor, bits: int, dtype: torch.dtype) -> Tensor:
    half = 2 ** (bits - 1)
    out: Tensor = (x.to(dtype) - half) / half
    return out


class SampleRNNModel(AutoregressiveModel):
    """SampleRNN with ``len(frame_sizes) + 1`` tiers.

    Args:
        frame_sizes: samples per frame, top tier first (each a multiple of the next).
        dim: RNN and MLP width. n_rnn: stacked RNN layers per tier. cell: ``gru`` or ``lstm``.
        embedding: sample-level embedding width. bits: quantisation bits.
    """

    def __init__(
        self,
        *,
        frame_sizes: tuple[int, ...] = (16, 4),
        dim: int = 1024,
        n_rnn: int = 2,
        cell: str = "gru",
        embedding: int = 256,
        bits: int = 8,
    ) -> None:
        super().__init__()
        self.bits, self.frame_sizes, self.dim, self.cell = bits, tuple(frame_sizes), dim, cell
        belows = [*(a // b for a, b in itertools.pairwise(frame_sizes))]
        belows.append(frame_sizes[-1])
        self.tiers = nn.ModuleList(
            FrameTier(f, below, dim=dim, n_rnn=n_rnn, cell=cell)
            for f, below in zip(frame_sizes, belows, strict=True)
        )
        window = frame_sizes[-1]
        self.embedding = nn.Embedding(2**bits, embedding)
        self.mlp_input = nn.Linear(window * embedding, dim)
        self.mlp = nn.Sequential(
            nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU()
        )
        self.head = nn.Linear(dim, 2**bits)

    def _tiers(self) -> list[FrameTier]:
        return [cast(FrameTier, tier) for tier in self.tiers]

    # -- teacher-forced --------------------------------------------------------------------
    def logits(self, x: Tensor) -> Tensor:
        self._check_tokens(x)
        B, L = x.shape
        top = self.frame_sizes[0]
        pad = -L % top
        start = torch.full((B, top), self.start_token, dtype=x.dtype, device=x.device)
        # The top frame before the sequence, the sequence, then padding to whole frames.
        seq = torch.cat([start, x, x.new_full((B, pad), self.start_token)], dim=1)
        real = _dequantise(seq, self.bits, self.head.weight.dtype)
        n = (L + pad) // top  # top-level steps
        cond: Tensor | None = None
        for tier in self._tiers():
            f = tier.frame
            steps = (L + pad) // f
            # Step j of this tier reads samples [(j - 1) f, j f) (previous frame).
            frames = real[:, top - f : top - f + steps * f].reshape(B, steps, f)
            h = tier.input(frames)
            if cond is not None:
                h = h + cond
            out, _ = tier.rnn(h)
            cond = tier.expand(out).reshape(B, steps * tier.below, self.dim)
        assert cond is not None
        assert cond.shape[1] == n * top
        window = self.frame_sizes[-1]
        # Sample t sees samples t - window .. t - 1 (start tokens before 0).
        emb = self.embedding(seq[:, top - window : top + L + pad - 1].long())  # (B, L+pad+w-1, E)
        windows = emb.unfold(1, window, 1)  # (B, L + pad, E, window)
        windows = windows.permute(0, 1, 3, 2).reshape(B, L + pad, -1)
        h = self.mlp(self.mlp_input(windows) + cond)
        logits: Tensor = self.head(h)
        return logits[:, :L]

    # -- recurrent -------------------------------------------------------------------------
    def setup_rnn(self, mode: str = "linear") -> None:
        """Nothing to prepare (``mode`` is accepted for a uniform interface)."""

    def default_state(self, batch: int, *, device: torch.device | None = None) -> SampleRNNState:
        weight = self.head.weight
        device = device if device is not None else weight.device
        dtype = weight.dtype
        n_states = 2 if self.cell == "lstm" else 1
        rnn_states = []
        for tier in self._tiers():
            layers = tier.rnn.num_layers
            rnn_states.append(
                tuple(
                    torch.zeros(layers, batch, self.dim, device=device, dtype=dtype)
                    for _ in range(n_states)
                )
            )
        return SampleRNNState(
            t=0,
            history=torch.full(
                (batch, self.frame_sizes[0]), self.start_token, dtype=torch.long, device=device
            ),
            rnn=rnn_states,
            cond=[
                torch.zeros(batch, tier.below, self.dim, device=device, dtype=dtype)
                for tier in self._tiers()
            ],
        )

    def step(self, prev: Tensor, state: SampleRNNState) -> tuple[Tensor, SampleRNNState]:
        """Logits of sample ``t`` given sample ``t - 1`` (``prev``); updates ``state`` in
        place. ``state.history`` holds samples ``t - F1 .. t - 1`` after the shift."""
        t = state.t
        if t > 0:  # the first call's prev is the start token, already in the history
            state.history.copy_(torch.cat([state.history[:, 1:], prev.long().unsqueeze(1)], 1))
        real = _dequantise(state.history, self.bits, self.head.weight.dtype)
        above: Tensor | None = None
        for i, tier in enumerate(self._tiers()):
            f = tier.frame
            if t % f == 0:
                h = tier.input(real[:, -f:]).unsqueeze(1)
                if above is not None:
                    h = h + above.unsqueeze(1)
                hidden = state.rnn[i]
                packed = hidden if self.cell == "lstm" else hidden[0]
                out, new = tier.rnn(h, packed)
                new_states = new if isinstance(new, tuple) else (new,)
                for old, fresh in zip(hidden, new_states, strict=True):
                    old.copy_(fresh)
                state.cond[i].copy_(tier.expand(out[:, 0]).reshape(-1, tier.below, self.dim))
            # This tier's conditioning for the step of the tier below that starts now.
            below_len = self.frame_sizes[i + 1] if i + 1 < len(self.frame_sizes) else 1
            above = state.cond[i][:, (t % f) // below_len]
        assert above is not None
        window = self.frame_sizes[-1]
        emb = self.embedding(state.history[:, -window:]).reshape(prev.shape[0], -1)
        logits = self.head(self.mlp(self.mlp_input(emb) + above))
        state.t += 1
        return logits, state
