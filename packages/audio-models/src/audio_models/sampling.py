"""Autoregressive sampling: the generation loop, its engines and nucleus sampling.

A model generates through *steppers*: ``stepper.step(prev)`` gives the logits of the next
sample from the previous one. The ``eager`` stepper is the model's own ``step``; other
engines (``audio_models.fast``) compute the same step another way. A model lists the engines
it can use in ``model.engines`` (name -> :class:`EngineSpec`); the builders attach them, so
this module and the models never import the engines' internals.

``generate`` samples with a temperature and a nucleus (``top_p``) but reports each sample's
log-likelihood *under the model* (temperature 1, no truncation), which equals what
``log_likelihood`` computes teacher-forced on the produced samples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

import torch
from attrs import frozen
from torch import Tensor

from audio_core.errors import ProblemsError


class EngineUnavailable(ProblemsError):
    """The requested engine cannot run this model here; the message says why (``audio-run``
    prints it as one line and exits 2)."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


class Generated(NamedTuple):
    """What generation returns.

    Attributes:
        samples: ``(n, length)`` class indices, prefix included.
        log_likelihood: ``(n,)`` float64, the model's log-probability (nats) of the samples
            after the prefix, given the prefix.
        prefix_len: how many leading samples were given rather than sampled.
        engine: which engine computed the steps.
        passed_over: why ``auto`` fell back to ``eager`` although the model has other engines
            (``compiled: no fused step for the kernel ExampleDecay``); empty otherwise.
    """

    samples: Tensor
    log_likelihood: Tensor
    prefix_len: int
    engine: str = "eager"
    passed_over: str = ""


class Steppable(Protocol):
    """What the loop needs from a model."""

    bits: int
    engines: Mapping[str, EngineSpec]

    @property
    def start_token(self) -> int: ...

    def setup_rnn(self, mode: str = "linear") -> None: ...

    def default_state(
        self, batch: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Any: ...

    def step(self, prev: Tensor, state: Any) -> tuple[Tensor, Any]: ...

    def parameters(self) -> Any: ...

    def eval(self) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    @property
    def training(self) -> bool: ...


class Stepper(ABC):
    """One batch of sequences being generated: ``step(prev)`` -> ``(batch, classes)`` logits."""

    #: The stepper runs its own threads (the C steps' batch parts). While it steps,
    #: :func:`generate` keeps torch's small per-sample ops (softmax, draws) on one thread: idle
    #: OpenMP workers spin for a while after each parallel region, on the very cores the
    #: stepper's threads need (at batch 64 on 2 cores this halved the samples per second).
    own_threads: bool = False

    @abstractmethod
    def step(self, prev: Tensor) -> Tensor:
        """Logits for the next sample given the previous one, ``prev (batch,)``."""


class SamplingStepper(Stepper):
    """A stepper that can also sample inside its own step, ``block`` steps per call
    (SaShiMi's C step); :func:`generate` uses that (at every ``temperature`` and ``top_p``)."""

    #: Steps per :meth:`sample_block` call.
    block: int
    classes: int

    @abstractmethod
    def sample_block(
        self,
        prev: Tensor,
        n: int,
        forced: Tensor,
        noise: Tensor | None,
        temperature: float,
        top_p: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """``n`` steps from ``prev (batch,)``: the first ``len(forced)`` take ``forced (k,
        batch)``, the others draw ``argmax(p / noise)`` with ``p = softmax(logits /
        temperature)`` (zero outside the nucleus when ``top_p < 1``, as in
        :func:`sample_logits`) and ``noise (n - k, batch, classes)`` Exp(1) draws (``None``:
        argmax of the logits) -> ``(tokens (n, batch), the drawn tokens' log-probabilities
        summed (batch,))``."""


class EagerStepper(Stepper):
    """The model's own ``step`` (the readable reference; any model, any device)."""

    def __init__(self, model: Steppable, batch: int, device: torch.device) -> None:
        self.model = model
        self.state = model.default_state(batch, device=device)

    def step(self, prev: Tensor) -> Tensor:
        logits, self.state = self.model.step(prev, self.state)
        out: Tensor = logits
        return out


class BlockSampler(ABC):
    """An engine that samples on the device, ``period`` samples per call, for one batch of
    sequences (the ``triton`` engine: a whole period in one CUDA graph). It draws its own
    noise from ``seed`` (taken from the caller's generator) and reports the model's
    log-probability of each chosen token."""

    period: int
    classes: int

    @abstractmethod
    def start(self, *, start_token: int, seed: Tensor, temperature: float, top_p: float) -> None:
        """Reset to the beginning of the sequences."""

    @abstractmethod
    def run(self, forced: Tensor, use: Tensor) -> tuple[Tensor, Tensor]:
        """The next period: ``forced``, ``use (period, batch)`` give the tokens to take
        instead of sampling (a prefix) -> ``(tokens, log-probabilities)``, each ``(period,
        batch)``."""


#: Makes the stepper (or block sampler) of one batch of ``batch`` sequences.
StepperFactory = Callable[[int], Stepper | BlockSampler]


@frozen
class EngineSpec:
    """A generation engine a model can use.

    Attributes:
        name: as ``--engine`` names it (``compiled``, ...).
        label: what ``audio-run generate`` prints (``compiled (fused C step)``).
        prepare: ``prepare(model, batch, device) -> factory``; raises
            :class:`EngineUnavailable` saying why when it cannot run (no compiler, wrong
            device, an unsupported layer).
        auto: ``auto(model, batch, device)`` -> ``None`` when ``--engine auto`` should pick it,
            else the reason not to.
        one_sequence_threads: the engine shares a single sequence's step across threads
            (SaShiMi's compiled step, a team of threads), so sampling one clip at a time is
            not serial work (``audio-run generate`` then keeps its threads).
    """

    name: str
    label: str
    prepare: Callable[[Any, int, torch.device], StepperFactory]
    auto: Callable[[Any, int, torch.device], str | None]
    one_sequence_threads: bool = False


def choose_engine(
    model: Steppable, engine: str, *, batch: int, device: torch.device
) -> tuple[str, StepperFactory | None, str]:
    """Resolve ``engine``: ``(label, factory or None for eager, reason)``.

    Raises:
        EngineUnavailable: the engine cannot run here, or the model has no such engine.
    """
    engines = dict(model.engines)
    if engine == "eager":
        return "eager", None, "asked for"
    if engine != "auto":
        if engine not in engines:
            offered = ", ".join(["auto", "eager", *engines])
            backbone = getattr(model, "backbone", None)
            what = type(model).__name__ + (
                f" over {type(backbone).__name__}" if backbone is not None else ""
            )
            raise EngineUnavailable(f"--engine {engine}: {what} supports only {offered}")
        spec = engines[engine]
        return spec.label, spec.prepare(model, batch, device), "asked for"
    reasons = []
    for spec in engines.values():
        why = spec.auto(model, batch, device)
        if why is None:
            try:
                return spec.label, spec.prepare(model, batch, device), "fastest available"
            except EngineUnavailable as exc:
                why = str(exc)
        reasons.append(f"{spec.name}: {why}")
    return "eager", None, "; ".join(reasons) or "the model's only engine"


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
    # torch.multinomial(probs, 1)'s own method and stream (argmax of probs / Exp(1) noise, the
    # noise drawn by exponential_ from the generator), without its validity checks, which
    # cost more than the draw at batch 1; generate checks the log-likelihoods instead.
    noise = torch.empty_like(probs).exponential_(generator=generator)
    return (probs / noise).argmax(-1)


@torch.no_grad()
def generate(
    model: Steppable,
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
    """Sample ``n`` sequences of ``length`` samples, ``batch`` at a time.

    Args:
        prefix: ``(n, l_prefix)`` class indices to continue (conditional generation); the
            prefix is run through the recurrence and counts toward ``length``.
        temperature, top_p: how samples are drawn (see :func:`sample_logits`); the reported
            log-likelihood is always under the model itself.
        mode: S4 step mode (ignored by models without S4 layers).
        generator: the random generator to draw from (on the model's device).
        progress: optional callable ``progress(n_done_steps)`` called after each step.
        engine: ``auto`` (the fastest that applies), ``eager`` (the model's own ``step``) or
            one of ``model.engines``. All give the same logits to float32 rounding.

    Raises:
        EngineUnavailable: an engine other than ``auto`` / ``eager`` that cannot run here.
        ValueError: bad sizes, sampling settings or prefix.
    """
    if n < 1 or length < 1 or batch < 1:
        raise ValueError(f"n, length and batch must be >= 1; got {n}, {length}, {batch}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1; got {temperature}, {top_p}")
    prefix_len = 0
    if prefix is not None:
        if prefix.dim() != 2 or prefix.shape[0] != n or prefix.shape[1] > length:
            raise ValueError(
                f"prefix must have shape (n={n}, l_prefix <= length={length}); "
                f"got {tuple(prefix.shape)}"
            )
        prefix_len = prefix.shape[1]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    label, factory, why = choose_engine(model, engine, batch=min(batch, n), device=device)
    passed_over = why if engine == "auto" and factory is None and model.engines else ""
    if factory is None:
        model.setup_rnn(mode)
    samples = torch.empty(n, length, dtype=torch.long, device=device)
    loglik = torch.zeros(n, dtype=torch.float64, device=device)
    try:
        for lo in range(0, n, batch):
            hi = min(n, lo + batch)
            stepper = (
                factory(hi - lo) if factory is not None else EagerStepper(model, hi - lo, device)
            )
            if isinstance(stepper, BlockSampler):
                seed = torch.randint(0, 2**31 - 1, (1,), generator=generator, device=device)
                stepper.start(start_token=model.start_token, seed=seed,
                              temperature=temperature, top_p=top_p)  # fmt: skip
                part = prefix[lo:hi] if prefix is not None else None
                _run_blocks(stepper, samples[lo:hi], loglik[lo:hi], part, progress)
                continue
            prev = torch.full((hi - lo,), model.start_token, dtype=torch.long, device=device)
            threads = torch.get_num_threads()
            if stepper.own_threads:
                torch.set_num_threads(1)
            fill = _sample_in_blocks if isinstance(stepper, SamplingStepper) else _step_through
            try:
                fill(stepper, prev, samples[lo:hi], loglik[lo:hi],
                     prefix[lo:hi] if prefix is not None else None, temperature, top_p,
                     generator, progress)  # fmt: skip
            finally:
                torch.set_num_threads(threads)
            if length > prefix_len and not bool(torch.isfinite(loglik[lo:hi]).all()):
                raise ValueError(
                    "the model's logits are not finite (NaN or inf): its weights have diverged"
                )
    finally:
        model.train(was_training)
    return Generated(samples, loglik, prefix_len, label, passed_over)


def _step_through(
    stepper: Stepper,
    prev: Tensor,
    samples: Tensor,
    loglik: Tensor,
    prefix: Tensor | None,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
    progress: Callable[[int], Any] | None,
) -> None:
    """Fill ``samples (b, length)`` and add to ``loglik (b,)`` one step at a time."""
    b, length = samples.shape
    prefix_len = prefix.shape[1] if prefix is not None else 0
    for t in range(length):
        logits = stepper.step(prev)
        if t < prefix_len:
            assert prefix is not None
            token = prefix[:, t].to(device=samples.device, dtype=torch.long)
        else:
            token = sample_logits(logits, temperature=temperature, top_p=top_p, generator=generator)
            logp = torch.log_softmax(logits.double(), dim=-1)
            loglik += logp.gather(-1, token.unsqueeze(-1)).squeeze(-1)
        samples[:, t] = token
        prev = token
        if progress is not None:
            progress(b)


#: The most Exp(1) draws :func:`generate` holds at once for a stepper that samples a block of
#: steps inside its own step.
NOISE_VALUES = 1 << 22


def _sample_in_blocks(
    stepper: Stepper,
    prev: Tensor,
    samples: Tensor,
    loglik: Tensor,
    prefix: Tensor | None,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
    progress: Callable[[int], Any] | None,
) -> None:
    """:func:`_step_through` (same arguments) for a :class:`SamplingStepper`,
    ``stepper.block`` steps per call. The noise of a block's draws
    is drawn at once, which gives the stream of per-step draws (``exponential_`` fills in
    order: tested), so the clips are those of :func:`sample_logits` step by step."""
    assert isinstance(stepper, SamplingStepper)
    b, length = samples.shape
    prefix_len = prefix.shape[1] if prefix is not None else 0
    classes = stepper.classes
    # at most NOISE_VALUES float64 draws in memory at once (32 MB: 128 steps at batch 64 of
    # 256 classes; fewer steps per call for big batches or 16-bit audio)
    per = max(1, min(stepper.block, NOISE_VALUES // max(1, b * classes)))
    for t0 in range(0, length, per):
        n = min(per, length - t0)
        k = max(0, min(n, prefix_len - t0))
        forced = (
            prefix[:, t0 : t0 + k].t() if prefix is not None and k else torch.empty(0, b).long()
        )
        noise = None
        if temperature > 0 and n > k:
            noise = torch.empty(n - k, b, classes, dtype=torch.float64)
            noise.exponential_(generator=generator)
        tokens, logp = stepper.sample_block(prev, n, forced, noise, temperature, top_p)
        samples[:, t0 : t0 + n] = tokens.t()
        loglik += logp
        prev = tokens[-1]
        if progress is not None:
            progress(b * n)


def _run_blocks(
    sampler: BlockSampler,
    samples: Tensor,
    loglik: Tensor,
    prefix: Tensor | None,
    progress: Callable[[int], Any] | None,
) -> None:
    """Fill ``samples (b, length)`` and add to ``loglik (b,)`` a period at a time; no host
    synchronisation (samples and sums stay on the device)."""
    b, length = samples.shape
    P, n_prefix = sampler.period, prefix.shape[1] if prefix is not None else 0
    if (
        prefix is not None
        and prefix.numel()
        and not 0 <= int(prefix.min()) <= int(prefix.max()) < sampler.classes
    ):
        raise ValueError(f"prefix tokens must be in [0, {sampler.classes - 1}]")
    forced = torch.zeros(P, b, dtype=torch.long, device=samples.device)
    use = torch.zeros(P, b, dtype=torch.int32, device=samples.device)
    for t0 in range(0, length, P):
        n = min(P, length - t0)
        forced.zero_()
        use.zero_()
        k = max(0, min(P, n_prefix - t0))
        if k:
            assert prefix is not None
            forced[:k] = prefix[:, t0 : t0 + k].t().to(samples.device)
            use[:k] = 1
        tokens, logp = sampler.run(forced, use)
        samples[:, t0 : t0 + n] = tokens[:n].t()
        loglik += logp[k:n].double().sum(0)
        if progress is not None:
            progress(b * n)
