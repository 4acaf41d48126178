"""SampleRNN (Mehri et al. 2017): frame-level RNN tiers over a sample-level MLP.

The module tree is the reference implementation's (``reproduce: true``), so its checkpoints
map onto ours key for key. ``frame_sizes`` is bottom first: tier ``i`` reads frames of
``n_i = f_0 f_1 ... f_i`` samples (the cumulative products; ``(8, 2, 2)`` gives 8, 16, 32)
and hands ``f_i`` conditioning vectors per frame to the tier below. Per tier:

- ``input_expand``: a weight-normalised 1x1 convolution over the frame's ``n_i`` samples,
  dequantised to ``2 * decode(q)`` in ``[-2, 2]``;
- ``rnn``: a GRU with a learnt initial state ``h0``;
- ``upsampling``: a weight-normalised transposed convolution with stride ``f_i`` and a bias per
  output position.

The sample-level MLP embeds the last ``f_0`` samples, convolves them to the hidden width, adds
the bottom tier's conditioning and applies ``ReLU -> 1x1 -> ReLU -> 1x1`` (all weight-normalised).

Tier ``i`` steps when ``t % n_i == 0``, on the ``n_i`` inputs ending at the current one; the
language model shows ``n_top - 1`` start tokens before every sequence (plus the shifted-in
start token), as the reference pads. Generation runs the same schedule one sample at a time
with fixed-shape buffers and RNN states updated in place.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .lm import IGNORE_INDEX, AutoregressiveModel

Dequantize = Literal["mu-law", "linear"]


def dequantize(codes: Tensor, bits: int, kind: Dequantize, dtype: torch.dtype) -> Tensor:
    """The reference's decoders: ``y = q / 2**(bits - 1) - 1`` (so the start token decodes to
    exactly 0), then for mu-law ``sign(y) ((1 + mu)^|y| - 1) / mu`` with ``mu = 2**bits - 1``."""
    mu = 2**bits - 1
    y: Tensor = codes.to(dtype) / 2 ** (bits - 1) - 1.0
    if kind == "linear":
        return y
    expanded: Tensor = torch.sign(y) * (torch.pow(1.0 + mu, y.abs()) - 1.0) / mu
    return expanded


def _product(a: int, b: int) -> int:
    return a * b


class WeightNorm(nn.Module):
    """Weight normalisation of a convolution weight, as ``torch.nn.utils.weight_norm`` stores
    it: ``weight = weight_g * weight_v / ||weight_v||`` (one norm per slice along dim 0)."""

    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        self.weight_v = nn.Parameter(weight.detach().clone())
        dims = tuple(range(1, weight.dim()))
        self.weight_g = nn.Parameter(weight.detach().norm(dim=dims, keepdim=True))

    @property
    def weight(self) -> Tensor:
        dims = tuple(range(1, self.weight_v.dim()))
        weight: Tensor = self.weight_g * self.weight_v / self.weight_v.norm(dim=dims, keepdim=True)
        return weight


class WNConv1d(WeightNorm):
    """A weight-normalised ``Conv1d`` (``weight_g``, ``weight_v``, optional ``bias``)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, *, bias: bool = True) -> None:
        conv = nn.Conv1d(c_in, c_out, kernel_size, bias=bias)
        super().__init__(conv.weight)
        self.bias = nn.Parameter(conv.bias.detach().clone()) if conv.bias is not None else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight, self.bias)


class GRU(nn.GRU):
    """``torch.nn.GRU`` (batch first) with a learnt initial state ``h0 (layers, 1, d)``."""

    def __init__(self, d_model: int, d_hidden: int, n_layers: int) -> None:
        super().__init__(d_model, d_hidden, num_layers=n_layers, batch_first=True)
        self.h0 = nn.Parameter(torch.zeros(n_layers, 1, d_hidden))


class Upsampling(nn.Module):
    """The reference's ``LearnedUpsampling1d``: a weight-normalised transposed convolution
    with stride = kernel = ``factor`` (``conv_t``) plus a bias per channel and position."""

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        conv = nn.ConvTranspose1d(channels, channels, factor, stride=factor, bias=False)
        self.conv_t = WeightNorm(conv.weight)
        self.bias = nn.Parameter(torch.zeros(channels, factor))

    def forward(self, h: Tensor) -> Tensor:
        """``(B, M, d) -> (B, M factor, d)``."""
        y = torch.einsum("bmi,icj->bmjc", h, self.conv_t.weight) + self.bias.T
        return y.reshape(h.shape[0], -1, y.shape[-1])


class FrameTier(nn.Module):
    """One frame-level tier (the reference's ``FrameLevelRNN``)."""

    def __init__(self, frame_size: int, n_samples: int, *, d_hidden: int, n_rnn: int) -> None:
        super().__init__()
        self.frame_size, self.n_samples = frame_size, n_samples
        self.input_expand = WNConv1d(n_samples, d_hidden, 1)
        self.rnn = GRU(d_hidden, d_hidden, n_rnn)
        self.upsampling = Upsampling(d_hidden, frame_size)

    def expand(self, frames: Tensor) -> Tensor:
        """``(B, M, n_samples)`` real frames -> ``(B, M, d_hidden)``."""
        return F.linear(frames, self.input_expand.weight[..., 0], self.input_expand.bias)


class SampleMLP(nn.Module):
    """The sample-level MLP (the reference's ``SampleLevelMLP``)."""

    def __init__(self, frame_size: int, *, d_hidden: int, d_model: int, bits: int) -> None:
        super().__init__()
        self.frame_size = frame_size
        self.embedding = nn.Embedding(2**bits, d_model)
        self.input = WNConv1d(d_model, d_hidden, frame_size, bias=False)
        self.hidden = WNConv1d(d_hidden, d_hidden, 1)
        self.output = WNConv1d(d_hidden, 2**bits, 1)

    def forward(self, tokens: Tensor, cond: Tensor) -> Tensor:
        """``tokens (B, L + f - 1)``, ``cond (B, L, d_hidden)`` -> logits ``(B, L, classes)``."""
        emb = self.embedding(tokens.long()).transpose(1, 2)
        x = F.relu(self.input(emb) + cond.transpose(1, 2))
        x = F.relu(self.hidden(x))
        out: Tensor = self.output(x).transpose(1, 2)
        return out


@dataclass
class SampleRNNState:
    """Recurrent state: ``t``, the last ``n_top`` inputs, per-tier GRU states and per-tier
    pending conditioning ``(B, f_i, d_hidden)`` (bottom first, like the tiers)."""

    t: int
    history: Tensor
    rnn: list[Tensor]
    cond: list[Tensor]


class SampleRNN(AutoregressiveModel):
    """SampleRNN with ``len(frame_sizes)`` frame-level tiers (see the module notes).

    Parameters: ``frame_level_rnns.<i>.*`` and ``sample_level_mlp.*``, the reference's names.

    Args:
        frame_sizes: bottom first (``(8, 2, 2)``: the reference's SC09 model).
        d_hidden: width of the GRUs and the MLP. n_rnn: GRU layers per tier.
        d_model: width of the sample-level embedding. bits: quantisation bits.
        dequantize: how frame tiers read samples (``mu-law`` or ``linear``, as the data was
            quantised).
        tbptt: train in chunks of this many samples (truncated backpropagation through time,
            ``audio-run train`` steps the optimizer once per chunk and carries the GRU states
            between chunks); ``0``: whole sequences.
    """

    def __init__(
        self,
        *,
        frame_sizes: Sequence[int] = (8, 2, 2),
        d_hidden: int = 1024,
        n_rnn: int = 1,
        d_model: int = 256,
        bits: int = 8,
        dequantize: Dequantize = "mu-law",
        tbptt: int = 0,
    ) -> None:
        super().__init__()
        if not frame_sizes or any(f < 1 for f in frame_sizes):
            raise ValueError(f"frame_sizes must be positive integers; got {tuple(frame_sizes)}")
        self.tbptt = int(tbptt)
        self.bits, self.frame_sizes = bits, tuple(frame_sizes)
        self.d_hidden, self.quantization = d_hidden, dequantize
        self.n_samples: tuple[int, ...] = tuple(itertools.accumulate(self.frame_sizes, _product))
        self.frame_level_rnns = nn.ModuleList(
            FrameTier(f, n, d_hidden=d_hidden, n_rnn=n_rnn)
            for f, n in zip(self.frame_sizes, self.n_samples, strict=True)
        )
        self.sample_level_mlp = SampleMLP(
            self.frame_sizes[0], d_hidden=d_hidden, d_model=d_model, bits=bits
        )

    @property
    def lookback(self) -> int:
        """Samples the top tier reads per step (``n_top``)."""
        return self.n_samples[-1]

    @property
    def context(self) -> int:
        """Start tokens shown before the shifted sequence (``n_top - 1``)."""
        return self.lookback - 1

    def _tiers(self) -> list[FrameTier]:
        return [cast(FrameTier, tier) for tier in self.frame_level_rnns]

    def _real(self, tokens: Tensor) -> Tensor:
        dtype = self.sample_level_mlp.embedding.weight.dtype
        return 2 * dequantize(tokens, self.bits, self.quantization, dtype)

    # -- teacher-forced --------------------------------------------------------------------
    def initial_rnn_state(self, batch: int) -> list[Tensor]:
        """Per tier (bottom first), the learnt ``h0`` for ``batch`` sequences."""
        return [tier.rnn.h0.expand(-1, batch, -1).contiguous() for tier in self._tiers()]

    def forward_inputs(
        self, inputs: Tensor, state: list[Tensor] | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        """The reference's module-level forward: input tokens ``(B, context + L)`` (the first
        ``context`` being history) -> logits ``(B, L, classes)`` and the final GRU states,
        from ``state`` (default: the learnt ``h0``). Output ``j`` is the distribution of the
        token after ``inputs[:, context + j]``; passing the returned state to the next chunk
        continues the sequence (truncated backpropagation through time)."""
        B, total = inputs.shape
        L = total - self.context
        if L < 1 or L % self.lookback:
            raise ValueError(
                f"SampleRNN needs {self.context} context tokens plus a multiple of "
                f"{self.lookback} samples; got {total} tokens"
            )
        states = state if state is not None else self.initial_rnn_state(B)
        real = self._real(inputs)
        cond: Tensor | None = None
        new_states: list[Tensor] = [states[0]] * len(states)
        for i in reversed(range(len(self.frame_level_rnns))):
            tier = self._tiers()[i]
            n = tier.n_samples
            frames = real[:, self.lookback - n : total - n + 1].reshape(B, -1, n)
            h = tier.expand(frames)
            if cond is not None:
                h = h + cond
            out, new_states[i] = tier.rnn(h, states[i].contiguous())
            cond = tier.upsampling(out)
        assert cond is not None
        window = inputs[:, self.lookback - self.frame_sizes[0] :]
        return self.sample_level_mlp(window, cond), new_states

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        chunk: tuple[int, int] | None = None,
        state: list[Tensor] | None = None,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """The training objective: the mean NLL of ``x`` in nats, or with ``chunk=(start,
        end)`` that of targets ``x[:, start:end]`` continuing from the GRU ``state`` (None:
        the learnt ``h0``), returned with the state to carry into the next chunk (TBPTT).
        A forward call, so that DistributedDataParallel sees it."""
        if chunk is None:
            return self.loss(x).nats
        return self.chunk_loss(x, chunk, state)

    def chunk_loss(
        self, x: Tensor, chunk: tuple[int, int], state: list[Tensor] | None
    ) -> tuple[Tensor, list[Tensor]]:
        """Mean NLL (nats) of ``x[:, start:end]`` given everything before it, the history
        entering through the ``context`` tokens before ``start`` and the carried ``state``;
        padding (:data:`IGNORE_INDEX`) is left out. A last chunk that is not a multiple of
        the top frame is padded."""
        start, end = chunk
        B, L = x.shape
        if not 0 <= start < end <= L:
            raise ValueError(f"chunk ({start}, {end}) is not inside a sequence of {L} samples")
        self._check_tokens(x, ignore=True)
        tokens = torch.where(x == IGNORE_INDEX, self.start_token, x)
        head = torch.full((B, self.context), self.start_token, dtype=x.dtype, device=x.device)
        inputs = torch.cat([head, self.shift_right(tokens)], dim=1)
        pad = -(end - start) % self.lookback
        window = inputs[:, start : end + self.context]
        targets = x[:, start:end]
        if pad:
            window = torch.cat([window, torch.full_like(window[:, :pad], self.start_token)], 1)
            targets = torch.cat([targets, torch.full_like(targets[:, :pad], IGNORE_INDEX)], 1)
        logits, new_state = self.forward_inputs(window, state)
        nats = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            targets.reshape(-1).long(),
            ignore_index=IGNORE_INDEX,
        )
        return nats, new_state

    def logits(self, x: Tensor) -> Tensor:
        B, L = x.shape
        pad = -L % self.lookback
        inputs = self.shift_right(x)
        start = torch.full((B, self.context), self.start_token, dtype=x.dtype, device=x.device)
        end = torch.full((B, pad), self.start_token, dtype=x.dtype, device=x.device)
        logits, _ = self.forward_inputs(torch.cat([start, inputs, end], dim=1))
        return logits[:, :L]

    # -- recurrent -------------------------------------------------------------------------
    def setup_rnn(self, mode: str = "linear") -> None:
        """Nothing to prepare (``mode`` is accepted for a uniform interface)."""

    def default_state(
        self, batch: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> SampleRNNState:
        weight = self.sample_level_mlp.embedding.weight
        device = device if device is not None else weight.device
        dtype = dtype if dtype is not None else weight.dtype
        with torch.no_grad():  # copies: the state is updated in place, h0 must not be
            rnn = [
                h.to(device=device, dtype=dtype, copy=True) for h in self.initial_rnn_state(batch)
            ]
        return SampleRNNState(
            t=0,
            history=torch.full(
                (batch, self.lookback), self.start_token, dtype=torch.long, device=device
            ),
            rnn=rnn,
            cond=[
                torch.zeros(batch, tier.frame_size, self.d_hidden, device=device, dtype=dtype)
                for tier in self._tiers()
            ],
        )

    def step(self, prev: Tensor, state: SampleRNNState) -> tuple[Tensor, SampleRNNState]:
        """Logits of the next sample given the current input ``prev`` (the start token at
        first); updates ``state`` in place."""
        t = state.t
        state.history.copy_(torch.cat([state.history[:, 1:], prev.long().unsqueeze(1)], 1))
        tiers = self._tiers()
        for i in reversed(range(len(tiers))):
            tier = tiers[i]
            if t % tier.n_samples:
                continue
            h = tier.expand(self._real(state.history[:, -tier.n_samples :]).unsqueeze(1))
            if i + 1 < len(tiers):
                index = (t // tier.n_samples) % tiers[i + 1].frame_size
                h = h + state.cond[i + 1][:, index].unsqueeze(1)
            out, hidden = tier.rnn(h, state.rnn[i])
            state.rnn[i].copy_(hidden)
            state.cond[i].copy_(tier.upsampling(out))
        window = state.history[:, -self.frame_sizes[0] :]
        cond = state.cond[0][:, t % self.frame_sizes[0]].unsqueeze(1)
        logits = self.sample_level_mlp(window, cond)[:, 0]
        state.t += 1
        return logits, state

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
