"""Autoregressive waveform models: teacher-forced loss and exact-likelihood sampling.

Every model predicts sample ``t`` from samples ``< t`` over ``2**bits`` classes. Position 0
sees a start token, the quantised zero ``2**(bits - 1)`` (silence for both mu-law and linear
codes). Two modes compute the same distribution:

- ``logits(x)``: all positions at once from the whole sequence (training, scoring);
- ``step(prev, state)``: one position from the previous sample and a state (generation).

``generate`` samples with a temperature and a nucleus (``top_p``) but reports each sample's
log-likelihood *under the model* (temperature 1, no truncation), which equals what
``log_likelihood`` computes teacher-forced on the produced samples.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Loss(NamedTuple):
    """Mean negative log-likelihood per sample, in nats and in bits."""

    nats: Tensor
    bits: Tensor


class Generated(NamedTuple):
    """What :meth:`AutoregressiveModel.generate` returns.

    Attributes:
        samples: ``(n, length)`` class indices, prefix included.
        log_likelihood: ``(n,)`` float64, the model's log-probability (nats) of the samples
            after the prefix, given the prefix.
        prefix_len: how many leading samples were given rather than sampled.
        engine: which engine computed the steps (see :mod:`audio_models.fast.engine`).
    """

    samples: Tensor
    log_likelihood: Tensor
    prefix_len: int
    engine: str = "eager"


def sample_logits(
    logits: Tensor, *, temperature: float, top_p: float, generator: torch.Generator | None
) -> Tensor:
    """Draw one class per row of ``logits (batch, classes)``.

    ``temperature`` divides the logits; ``top_p < 1`` keeps the smallest set of most likely
    classes whose probability reaches ``top_p`` (nucleus sampling). ``temperature == 0`` takes
    the most likely class.
    """
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(-1) - sorted_probs  # mass of the classes ranked higher
        sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class AutoregressiveModel(nn.Module, ABC):
    """The interface shared by SaShiMi, WaveNet and SampleRNN (see the module notes)."""

    bits: int

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

    # -- implemented by each model ---------------------------------------------------------
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
    def default_state(self, batch: int, *, device: torch.device | None = None) -> Any:
        """The state before the first sample."""
        ...

    @abstractmethod
    def step(self, prev: Tensor, state: Any) -> tuple[Tensor, Any]:
        """Logits ``(batch, classes)`` of the next sample given the previous one ``(batch,)``
        (the start token at first)."""
        ...

    # -- shared ----------------------------------------------------------------------------
    def _check_tokens(self, x: Tensor) -> None:
        if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"expected class indices (an integer tensor); got {x.dtype}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.n_classes):
            raise ValueError(
                f"class indices must lie in [0, {self.n_classes - 1}] for bits={self.bits}; "
                f"got values in [{int(x.min())}, {int(x.max())}]"
            )

    def forward(self, x: Tensor) -> Tensor:
        """The training objective: mean next-sample NLL of ``x`` in nats (what
        ``audio-run train`` and ``DistributedDataParallel`` call)."""
        return self.loss(x).nats

    def loss(self, x: Tensor) -> Loss:
        """Mean next-sample negative log-likelihood of ``x (batch, L)``, nats and bits."""
        self._check_tokens(x)
        logits = self.logits(x)
        nats = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), x.reshape(-1).long())
        return Loss(nats, nats / math.log(2))

    def log_likelihood(self, x: Tensor, *, start: int = 0) -> Tensor:
        """``(batch,)`` float64: the log-probability (nats) of ``x[:, start:]`` given
        ``x[:, :start]``, teacher-forced."""
        self._check_tokens(x)
        logp = torch.log_softmax(self.logits(x).double(), dim=-1)
        picked = logp.gather(-1, x.long().unsqueeze(-1)).squeeze(-1)
        return picked[:, start:].sum(-1)

    @torch.no_grad()
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
        progress: Any = None,
        engine: str = "auto",
    ) -> Generated:
        """Sample ``n`` sequences of ``length`` samples, ``batch`` at a time.

        Args:
            prefix: ``(n, l_prefix)`` class indices to continue (conditional generation);
                the prefix is run through the recurrence and counts toward ``length``.
            temperature, top_p: how samples are drawn (see :func:`sample_logits`); the
                reported log-likelihood is always under the model itself.
            mode: S4 step mode (ignored by models without S4 layers).
            generator: the random generator to draw from (on the model's device).
            progress: optional callable ``progress(n_done_steps)`` called after each step.
            engine: ``auto`` (the fastest that applies), ``eager`` (the model's own ``step``)
                or ``compiled`` (SaShiMi on the CPU: a fused C step; see
                :mod:`audio_models.fast.engine`). All give the same logits to float32
                rounding.

        Raises:
            EngineUnavailable: ``engine="compiled"`` where it cannot run (says why).
        """
        if n < 1 or length < 1 or batch < 1:
            raise ValueError(f"n, length and batch must be >= 1; got {n}, {length}, {batch}")
        if temperature < 0 or not 0 < top_p <= 1:
            raise ValueError(
                f"need temperature >= 0 and 0 < top_p <= 1; got {temperature}, {top_p}"
            )
        prefix_len = 0
        if prefix is not None:
            self._check_tokens(prefix)
            if prefix.dim() != 2 or prefix.shape[0] != n or prefix.shape[1] > length:
                raise ValueError(
                    f"prefix must have shape (n={n}, l_prefix <= length={length}); "
                    f"got {tuple(prefix.shape)}"
                )
            prefix_len = prefix.shape[1]
        from .fast.engine import CompiledStepper, EagerStepper, choose_engine, stepper_name

        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        compiled, _ = choose_engine(self, engine, batch=min(batch, n), device=device)
        if compiled is None:
            self.setup_rnn(mode)
        samples = torch.empty(n, length, dtype=torch.long, device=device)
        loglik = torch.zeros(n, dtype=torch.float64, device=device)
        try:
            for lo in range(0, n, batch):
                hi = min(n, lo + batch)
                stepper = (
                    CompiledStepper(compiled, hi - lo)
                    if compiled is not None
                    else EagerStepper(self, hi - lo, device)
                )
                prev = torch.full((hi - lo,), self.start_token, dtype=torch.long, device=device)
                for t in range(length):
                    logits = stepper.step(prev)
                    if t < prefix_len:
                        assert prefix is not None
                        token = prefix[lo:hi, t].to(device=device, dtype=torch.long)
                    else:
                        token = sample_logits(
                            logits, temperature=temperature, top_p=top_p, generator=generator
                        )
                        logp = torch.log_softmax(logits.double(), dim=-1)
                        loglik[lo:hi] += logp.gather(-1, token.unsqueeze(-1)).squeeze(-1)
                    samples[lo:hi, t] = token
                    prev = token
                    if progress is not None:
                        progress(hi - lo)
        finally:
            self.train(was_training)
        return Generated(samples, loglik, prefix_len, stepper_name(compiled))


class BackboneLM(AutoregressiveModel):
    """Embedding -> sequence backbone -> linear head (SaShiMi and WaveNet).

    The backbone maps ``(batch, L, d_model)`` to ``(batch, L, d_out)`` and has ``setup_step``,
    ``default_state(batch, device=)`` and ``step(x (batch, d_model), state)``.
    """

    def __init__(self, backbone: nn.Module, *, d_model: int, d_out: int, bits: int) -> None:
        super().__init__()
        self.bits = bits
        self.embedding = nn.Embedding(2**bits, d_model)
        self.backbone = backbone
        self.head = nn.Linear(d_out, 2**bits)

    def logits(self, x: Tensor) -> Tensor:
        h = self.backbone(self.embedding(self.shift_right(x).long()))
        return self.head(h)  # type: ignore[no-any-return]

    def setup_rnn(self, mode: str = "linear") -> None:
        self.backbone.setup_step(mode)  # type: ignore[operator]

    def default_state(self, batch: int, *, device: torch.device | None = None) -> Any:
        return self.backbone.default_state(batch, device=device)  # type: ignore[operator]

    def step(self, prev: Tensor, state: Any) -> tuple[Tensor, Any]:
        h, state = self.backbone.step(self.embedding(prev.long()), state)  # type: ignore[operator]
        return self.head(h), state
