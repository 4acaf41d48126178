"""Autoregressive waveform models: teacher-forced loss and exact-likelihood sampling.

Every model predicts sample ``t`` from samples ``< t`` over ``2**bits`` classes. Position 0
sees a start token, the quantised zero ``2**(bits - 1)`` (silence for both mu-law and linear
codes). Two modes compute the same distribution:

- ``logits(x)``: all positions at once from the whole sequence (training, scoring);
- ``step(prev, state)``: one position from the previous sample and a state (generation).

Sampling itself lives in :mod:`audio_models.sampling`; a model only lists the engines it can
use (``engines``), which the builders attach.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.protocols import IGNORE_INDEX
from ssm_kernels.protocol import Recurrent

from . import sampling
from .sampling import EngineSpec, Generated

__all__ = ["IGNORE_INDEX", "TOP_K", "AutoregressiveModel", "BackboneLM", "Loss", "TokenScores"]


class Loss(NamedTuple):
    """Mean negative log-likelihood per sample, in nats and in bits."""

    nats: Tensor
    bits: Tensor


class TokenScores(NamedTuple):
    """Sums over the scored positions of a batch (padding left out), to add up over a split.

    Attributes:
        nats: total negative log-likelihood (float64). positions: positions scored.
        correct: per ``k``, positions whose target is among the ``k`` most likely classes.
    """

    nats: float
    positions: int
    correct: dict[int, int]


TOP_K = (1, 3, 5, 10)


class AutoregressiveModel(nn.Module, ABC):
    """The interface shared by SaShiMi, WaveNet and SampleRNN (see the module notes).

    Attributes:
        bits: quantisation bits (``2**bits`` classes).
        engines: generation engines besides ``eager``, by name (set by the builders).
    """

    bits: int
    engines: Mapping[str, EngineSpec] = {}

    @property
    def n_classes(self) -> int:
        return int(2**self.bits)

    @property
    def start_token(self) -> int:
        return int(2 ** (self.bits - 1))

    def shift_right(self, x: Tensor) -> Tensor:
        """``(batch, L)`` -> the inputs that predict it: start token, then ``x[:, :-1]``."""
        start = torch.full_like(x[:, :1], self.start_token)
        return torch.cat([start, x[:, :-1]], dim=1)

    # -- implemented by each model -----------------------------------------------------------
    @abstractmethod
    def logits(self, x: Tensor) -> Tensor:
        """Teacher-forced ``(batch, L, classes)`` logits for class indices ``x (batch, L)``."""
        ...

    @abstractmethod
    def setup_rnn(self, mode: str = "linear") -> None:
        """Prepare ``step`` (S4 step mode ``dense``, ``diagonal`` or ``linear`` where it
        applies); call again after the parameters change."""
        ...

    @abstractmethod
    def default_state(
        self, batch: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Any:
        """The state before the first sample."""
        ...

    @abstractmethod
    def step(self, prev: Tensor, state: Any) -> tuple[Tensor, Any]:
        """Logits ``(batch, classes)`` of the next sample given the previous one ``(batch,)``
        (the start token at first)."""
        ...

    # -- shared ------------------------------------------------------------------------------
    def _check_tokens(self, x: Tensor, *, ignore: bool = False) -> None:
        if torch.compiler.is_compiling():
            return  # checked by every eager call; a traced graph cannot branch on values
        if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"expected class indices (an integer tensor); got {x.dtype}")
        values = x[x != IGNORE_INDEX] if ignore else x
        if values.numel() and (int(values.min()) < 0 or int(values.max()) >= self.n_classes):
            raise ValueError(
                f"class indices must lie in [0, {self.n_classes - 1}] for bits={self.bits}; "
                f"got values in [{int(values.min())}, {int(values.max())}]"
            )

    def forward(self, x: Tensor) -> Tensor:
        """The training objective: mean next-sample NLL of ``x`` in nats (what
        ``audio-run train`` and ``DistributedDataParallel`` call)."""
        return self.loss(x).nats

    def loss(self, x: Tensor) -> Loss:
        """Mean next-sample negative log-likelihood of ``x (batch, L)``, nats and bits.

        Positions holding :data:`IGNORE_INDEX` (padding) are left out; the model then sees
        them as the start token.
        """
        self._check_tokens(x, ignore=True)
        inputs = torch.where(x == IGNORE_INDEX, self.start_token, x)
        logits = self.logits(inputs)
        nats = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            x.reshape(-1).long(),
            ignore_index=IGNORE_INDEX,
        )
        return Loss(nats, nats / math.log(2))

    @torch.no_grad()
    def score_tokens(self, x: Tensor, ks: tuple[int, ...] = TOP_K) -> TokenScores:
        """NLL sum and top-``k`` accuracy counts of ``x (batch, L)``, teacher-forced, as the
        reference's audio task measures them (``accuracy``, ``accuracy@k``): a position is
        correct at ``k`` when its target is among the ``k`` classes of highest probability.
        Positions holding :data:`IGNORE_INDEX` are left out."""
        self._check_tokens(x, ignore=True)
        inputs = torch.where(x == IGNORE_INDEX, self.start_token, x)
        logits = self.logits(inputs).double()
        keep = x != IGNORE_INDEX
        targets = inputs.long()
        nll = -torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        kmax = min(max(ks), logits.shape[-1])
        top = logits.topk(kmax, dim=-1).indices
        hits = top == targets.unsqueeze(-1)
        correct = {k: int((hits[..., : min(k, kmax)].any(-1) & keep).sum()) for k in ks}
        return TokenScores(float(nll[keep].sum()), int(keep.sum()), correct)

    def log_likelihood(self, x: Tensor, *, start: int = 0) -> Tensor:
        """``(batch,)`` float64: the log-probability (nats) of ``x[:, start:]`` given
        ``x[:, :start]``, teacher-forced."""
        self._check_tokens(x)
        logp = torch.log_softmax(self.logits(x).double(), dim=-1)
        picked = logp.gather(-1, x.long().unsqueeze(-1)).squeeze(-1)
        return picked[:, start:].sum(-1)

    def generate(
        self,
        n: int,
        length: int,
        *,
        prefix: Tensor | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        batch: int = 16,
        mode: str = "linear",
        generator: torch.Generator | None = None,
        progress: Callable[[int], Any] | None = None,
        engine: str = "auto",
    ) -> Generated:
        """Sample ``n`` sequences of ``length`` samples (:func:`audio_models.sampling.generate`)."""
        if prefix is not None:
            self._check_tokens(prefix)
        return sampling.generate(
            self,
            n,
            length,
            prefix=prefix,
            temperature=temperature,
            top_p=top_p,
            batch=batch,
            mode=mode,
            generator=generator,
            progress=progress,
            engine=engine,
        )


class BackboneLM(AutoregressiveModel):
    """Embedding -> sequence backbone -> linear head: the language model over any backbone.

    Parameters: ``embedding.weight`` (the reference's ``encoder.0``), the backbone's, and
    ``head.weight`` / ``head.bias`` (its ``decoder.0.output_transform``).

    Args:
        backbone: maps ``(batch, L, d_model)`` to ``(batch, L, d_output)`` causally, with a
            recurrent mode (:class:`~ssm_kernels.protocol.Recurrent`) for generation. A
            backbone with an integer ``context`` attribute sees that many start tokens before
            every sequence (WaveNet: its receptive field minus one, as the reference pads).
        d_model, d_out: the backbone's input and output widths.
        bits: quantisation bits.
    """

    def __init__(self, backbone: nn.Module, *, d_model: int, d_out: int, bits: int) -> None:
        super().__init__()
        self.bits = bits
        self.embedding = nn.Embedding(2**bits, d_model)
        self.backbone = backbone
        self.head = nn.Linear(d_out, 2**bits)
        self.context = int(getattr(backbone, "context", 0))

    def _recurrent(self) -> Recurrent[Any]:
        if not isinstance(self.backbone, Recurrent):
            raise TypeError(
                f"backbone {type(self.backbone).__name__} has no recurrent mode (setup_step, "
                "default_state, step), which generation needs"
            )
        return self.backbone

    def forward_inputs(self, inputs: Tensor) -> Tensor:
        """Logits ``(batch, L, classes)`` of input tokens ``(batch, L)`` as they are: output
        ``j`` is the distribution of the token after ``inputs[:, j]`` (the reference's
        module-level ``forward``)."""
        out: Tensor = self.head(self.backbone(self.embedding(inputs.long())))
        return out

    def logits(self, x: Tensor) -> Tensor:
        inputs = self.shift_right(x)
        if self.context:
            pad = torch.full_like(x[:, :1], self.start_token).expand(-1, self.context)
            inputs = torch.cat([pad, inputs], dim=1)
        return self.forward_inputs(inputs)[:, self.context :]

    def setup_rnn(self, mode: str = "linear") -> None:
        self._recurrent().setup_step(mode)  # type: ignore[arg-type]

    def default_state(
        self, batch: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Any:
        state = self._recurrent().default_state(batch, device=device, dtype=dtype)
        if self.context:
            start = torch.full((batch,), self.start_token, dtype=torch.long, device=device)
            prime: Any = getattr(self.backbone, "prime", None)
            if prime is not None:  # fill the state from one pass over the context
                context = self.embedding(start).unsqueeze(1).expand(-1, self.context, -1)
                state = prime(context, state)
            else:
                for _ in range(self.context):
                    _, state = self._recurrent().step(self.embedding(start), state)
        return state

    def step(self, prev: Tensor, state: Any) -> tuple[Tensor, Any]:
        h, state = self._recurrent().step(self.embedding(prev.long()), state)
        out: Tensor = self.head(h)
        return out, state
