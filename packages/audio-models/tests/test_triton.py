"""The ``triton`` engine without a GPU: its kernel under Triton's interpreter, its period logic
traced the way a CUDA graph freezes it, its twin on fake CUDA tensors, and every kernel
variant of the SC09 preset compiled for sm_90 (H100 / H200) with no register spills.

The interpreter runs when ``TRITON_INTERPRET=1`` was set before Triton compiled anything
(``conftest.py`` sets it where no GPU exists); on a GPU machine ``test_cuda.py`` runs the same
comparisons on the device.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from audio_models.fast import fused
from audio_models.sampling import EagerStepper, EngineUnavailable, choose_engine, generate
from audio_models.testing import kernel

from .test_fast import tiny

interpreted = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1",
    reason="needs TRITON_INTERPRET=1 before Triton is imported (conftest sets it without a GPU)",
)

VARIANTS: dict[str, dict[str, object]] = {
    "s4-pools-2-2": {"pool": (2, 2), "n_layers": 2},
    "s4d-pools-2-2": {"pool": (2, 2), "n_layers": 2, "kernel": kernel("s4d", d_state=8)},
    "s4-layernorm-no-glu-no-ff": {"pool": (4,), "norm": "layer", "glu": False, "ff": 0},
    "s4d-flat": {"pool": (), "n_layers": 2, "kernel": kernel("s4d", d_state=8)},
    # S4's discrete form at rank 2 (HiPPO legt) and with a trained Q of its own (not P)
    "s4-legt-rank2": {"pool": (2,), "kernel": kernel("s4", d_state=8, init="legt", rank=2)},
    "s4-separate-q": {"pool": (2,), "kernel": kernel("s4", d_state=8, separate_q=True)},
    # the U-Net: down layers before each pool, skips into the up layers
    "s4-unet": {"pool": (2, 2), "unet": True, "n_layers": 2},
    "s4d-unet-layernorm-no-ff": {"pool": (2,), "unet": True, "norm": "layer", "ff": 0,
                                 "kernel": kernel("s4d", d_state=8)},
}  # fmt: skip


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / a.square().mean().sqrt())


def _forced_run(model: torch.nn.Module, sampler: fused.FusedSampler, periods: int,
                batch: int) -> float:  # fmt: skip
    """Teacher-force random tokens through ``sampler`` and the eager step; the worst relative
    difference of their logits."""
    P = sampler.period
    tokens = torch.randint(0, sampler.classes, (periods * P, batch),
                           generator=torch.Generator().manual_seed(1))  # fmt: skip
    eager = EagerStepper(model, batch, torch.device("cpu"))  # type: ignore[arg-type]
    sampler.start(start_token=model.start_token, seed=torch.tensor([3]), temperature=1.0,
                  top_p=1.0)  # fmt: skip
    prev, worst = torch.full((batch,), model.start_token), 0.0
    for k in range(periods):
        forced = tokens[k * P : (k + 1) * P]
        chosen, logp = sampler.run(forced, torch.ones(P, batch, dtype=torch.int32))
        assert torch.equal(chosen, forced)
        for j in range(P):
            logits = eager.step(prev)
            worst = max(worst, _rel(logits, sampler.b.logits[j]))
            want = torch.log_softmax(logits.double(), -1).gather(-1, forced[j, :, None])[:, 0]
            assert torch.allclose(logp[j].double(), want, rtol=1e-4, atol=1e-4)
            prev = forced[j]
    return worst


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_twin_equals_the_eager_step(variant: str, dtype: torch.dtype) -> None:
    """Overlapped (where the model allows: the default) and in order."""
    model = tiny(dtype, **VARIANTS[variant])
    model.setup_rnn("linear")
    f = fused.FusedSaShiMi(model)
    for overlap in (True, False) if f.overlap_refused() is None else (False,):
        sampler = fused.FusedSampler(f, 3, backend="torch", overlap=overlap)
        assert sampler.overlap == overlap
        assert _forced_run(model, sampler, 3, 3) <= (1e-5 if dtype == torch.float32 else 1e-9)


def _reachable(deps: list[list[int]]) -> list[set[int]]:
    """For each launch, every earlier launch it waits for, directly or not."""
    out: list[set[int]] = []
    for need in deps:
        out.append(set(need).union(*(out[d] for d in need)))
    return out


@pytest.mark.parametrize("pool", [(2, 2), (4, 4), (2, 2, 2)])
def test_overlapped_launches_run_beside_the_outer_tier(pool: tuple[int, ...]) -> None:
    """Tier 1's step at a frame's last position waits for neither that position's outer
    step nor the other way round, nor does the centre (first in a period) wait for the
    period's first outer steps. With two pools the longest chain of launches is the outer
    tier's, one per position, where in order every launch waits for the one before."""
    f = fused.FusedSaShiMi(tiny(torch.float32, pool=pool))
    sampler = fused.FusedSampler(f, 2, backend="torch")
    assert sampler.overlap
    steps = sampler.schedule()
    after = _reachable(sampler.dependencies(steps))

    def index(tier: int, pos: int) -> int:
        return next(n for n, s in enumerate(steps) if s.tier == tier and s.pos == pos)

    p0, P, last = pool[0], sampler.period, len(pool)
    for k in range(P // p0):
        m, o = index(1, k * p0 + p0 - 1), index(0, k * p0 + p0 - 1)
        assert m < o
        assert m not in after[o]
        assert steps[m].tokens_in
    centre = 0
    assert steps[centre].tier == last
    for j in range(p0 - 1):
        assert centre not in after[index(0, j)]
    above = next(n for n, s in enumerate(steps) if s.tier == last - 1)
    assert centre in after[above]  # its output is the next tier's next input
    chain = [0] * len(steps)
    for n, need in enumerate(sampler.dependencies(steps)):
        chain[n] = 1 + max((chain[d] for d in need), default=0)
    if len(pool) > 2:
        assert max(chain) < len(steps)
        return
    assert max(chain) == P
    in_order = fused.FusedSampler(f, 2, backend="torch", overlap=False)
    ordered = in_order.schedule()
    assert all(n - 1 in _reachable(in_order.dependencies(ordered))[n]
               for n in range(1, len(ordered)))  # fmt: skip


def _periods_equal_eager(
    run_period: Callable[[fused.FusedSampler, int], bool], overlap: bool = True
) -> tuple[fused.FusedSampler, int]:
    """Four teacher-forced periods of the tiny two-pool model: ``run_period(sampler, k)``
    runs period ``k`` on ``sampler.b`` (the forced tokens in place) and says whether its
    launches ran out of program order; the logits must be the eager step's. Returns the
    sampler and how many periods ran out of order."""
    model = tiny(torch.float64, pool=(2, 2), n_layers=2)
    model.setup_rnn("linear")
    sampler = fused.FusedSampler(fused.FusedSaShiMi(model), 2, backend="torch",
                                 overlap=overlap)  # fmt: skip
    assert sampler.overlap == overlap
    sampler.start(start_token=model.start_token, seed=torch.tensor([1]), temperature=1.0,
                  top_p=1.0)  # fmt: skip
    P = sampler.period
    tokens = torch.randint(0, 16, (4 * P, 2), generator=torch.Generator().manual_seed(2))
    eager = EagerStepper(model, 2, torch.device("cpu"))  # type: ignore[arg-type]
    prev = torch.full((2,), model.start_token)
    moved = 0
    for k in range(4):
        sampler.b.forced.copy_(tokens[k * P : (k + 1) * P])
        sampler.b.use.fill_(1)
        moved += run_period(sampler, k)
        for j in range(P):
            assert _rel(eager.step(prev), sampler.b.logits[j]) <= 1e-9
            prev = tokens[k * P + j]
    return sampler, moved


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_overlapped_period_in_any_order_its_dependencies_allow_equals_eager(
    seed: int,
) -> None:
    """What a CUDA graph may do with the streams: run the launches of each period in any
    order that keeps every dependency (here a random one, picked among the launches whose
    dependencies have run). Wrong dependencies (a buffer two launches share but the order
    does not protect) give other logits."""
    rng = random.Random(seed)

    def run_period(sampler: fused.FusedSampler, k: int) -> bool:
        steps = sampler.schedule(first=k == 0)
        deps = sampler.dependencies(steps)
        done: list[int] = []
        while len(done) < len(steps):
            ready = [n for n in range(len(steps))
                     if n not in done and all(d in done for d in deps[n])]  # fmt: skip
            done.append(rng.choice(ready))
        for n in done:
            sampler.launch(steps[n], sampler.b)
        sampler.end_period(sampler.b)
        return done != sorted(done)

    _, moved = _periods_equal_eager(run_period)
    assert moved  # some period ran out of program order


class _FakeStream:
    """A CUDA stream as :meth:`FusedSampler._period_streams` uses it while a graph is
    captured: the operations queued on it, waits included."""

    made: ClassVar[list[_FakeStream]] = []

    def __init__(self) -> None:
        self.ops: list[tuple[Any, ...]] = []
        _FakeStream.made.append(self)

    def wait_stream(self, other: _FakeStream) -> None:
        self.ops.append(("until", other, len(other.ops)))

    def wait_event(self, event: _FakeEvent) -> None:
        self.ops.append(("until", *event.at))


class _FakeEvent:
    def record(self, stream: _FakeStream) -> None:
        self.at = (stream, len(stream.ops))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_captured_period_on_its_streams_runs_as_the_eager_step(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_period_streams`` on fake streams and events (what a CUDA graph capture records),
    then the streams run in a random interleaving that keeps their waits (what the graph may
    do): the logits are the eager step's. A missing wait (or fork, or join) lets some
    interleaving read a buffer before it is written."""
    rng = random.Random(seed)
    current: list[_FakeStream] = []

    @contextlib.contextmanager
    def use(stream: _FakeStream) -> Iterator[None]:
        current.append(stream)
        yield
        current.pop()

    monkeypatch.setattr(torch.cuda, "current_stream", lambda: current[-1])
    monkeypatch.setattr(torch.cuda, "Stream", _FakeStream)
    monkeypatch.setattr(torch.cuda, "Event", _FakeEvent)
    monkeypatch.setattr(torch.cuda, "stream", use)

    def run_period(sampler: fused.FusedSampler, k: int) -> bool:
        launch, end = sampler.launch, sampler.end_period
        _FakeStream.made = []
        current[:] = [_FakeStream()]
        with monkeypatch.context() as m:  # record: what the capture queues on each stream
            m.setattr(sampler, "launch", lambda step, b: current[-1].ops.append(("run", step)))
            m.setattr(sampler, "end_period", lambda b: current[-1].ops.append(("end",)))
            sampler._period_streams(sampler.b, first=k == 0)
        streams, at = _FakeStream.made, dict.fromkeys(_FakeStream.made, 0)
        assert len(streams) == 3  # one per tier
        order: list[fused.Step] = []

        def runnable(s: _FakeStream) -> bool:
            if at[s] == len(s.ops):
                return False
            op = s.ops[at[s]]
            return op[0] != "until" or at[op[1]] >= op[2]

        while any(at[s] < len(s.ops) for s in streams):
            ready = [s for s in streams if runnable(s)]
            assert ready, "the streams wait on each other"
            stream = rng.choice(ready)
            op = stream.ops[at[stream]]
            at[stream] += 1
            if op[0] == "run":
                launch(op[1], sampler.b)
                order.append(op[1])
            elif op[0] == "end":
                assert all(at[s] == len(s.ops) for s in streams), "the period ends first"
                end(sampler.b)
        return order != sampler.schedule(first=k == 0)

    _, moved = _periods_equal_eager(run_period)
    assert moved  # some period ran out of program order


def test_overlapping_is_refused_where_the_model_cannot() -> None:
    unet = fused.FusedSaShiMi(tiny(torch.float32, pool=(2, 2), unet=True))
    assert unet.overlap_refused() == "the U-Net's tier 1 pools the outer tier's down layers"
    assert not fused.FusedSampler(unet, 2, backend="torch").overlap
    with pytest.raises(ValueError, match="tiers cannot overlap: the U-Net's"):
        fused.FusedSampler(unet, 2, backend="torch", overlap=True)
    one = fused.FusedSaShiMi(tiny(torch.float32, pool=(4,)))
    assert one.overlap_refused() == "fewer than two pools"


@interpreted
@pytest.mark.parametrize(
    ("variant", "dtype", "batch"),
    [
        ("s4-pools-2-2", torch.float32, 1),
        ("s4-pools-2-2", torch.float64, 3),
        ("s4d-pools-2-2", torch.float32, 3),
        ("s4d-pools-2-2", torch.float64, 1),
        ("s4-layernorm-no-glu-no-ff", torch.float64, 2),
        ("s4d-flat", torch.float32, 2),
        ("s4-legt-rank2", torch.float32, 2),
        ("s4-legt-rank2", torch.float64, 1),
        ("s4-separate-q", torch.float64, 2),
        ("s4-unet", torch.float32, 2),
        ("s4-unet", torch.float64, 1),
        ("s4d-unet-layernorm-no-ff", torch.float64, 3),
    ],
)
def test_the_kernel_equals_the_eager_step(variant: str, dtype: torch.dtype, batch: int) -> None:
    """fp32 to 1e-5 of the logits' RMS (measured: 7e-7), fp64 to 1e-9 (measured: 1e-15);
    several periods, so that every tier runs more than once and the frame buffers carry."""
    model = tiny(dtype, **VARIANTS[variant])
    model.setup_rnn("linear")
    sampler = fused.FusedSampler(fused.FusedSaShiMi(model), batch, backend="triton")
    assert _forced_run(model, sampler, 2, batch) <= (1e-5 if dtype == torch.float32 else 1e-9)


#: Launches other than the default (whose tiles hold every input of these tiny models, so
#: that every product reads its input from registers): every input through the scratch row;
#: tiles so small that the products and the recurrence run in chunks; one row per program.
LAUNCHES = {
    "scratch": fused.Launch(block=4, warps=4, reg=False),
    "chunked": fused.Launch(block=2, warps=1, tile=32, ssm_tile=8),
    "row-per-program": fused.Launch(block=1, warps=2),
}


@interpreted
@pytest.mark.parametrize("launch", list(LAUNCHES))
@pytest.mark.parametrize(
    ("variant", "dtype", "batch"),
    [
        ("s4-pools-2-2", torch.float32, 3),
        ("s4-legt-rank2", torch.float64, 2),
        ("s4-unet", torch.float64, 3),
        ("s4d-unet-layernorm-no-ff", torch.float32, 2),
    ],
)
def test_every_launch_computes_the_same_step(variant: str, dtype: torch.dtype, batch: int,
                                             launch: str) -> None:  # fmt: skip
    model = tiny(dtype, **VARIANTS[variant])
    model.setup_rnn("linear")
    f = fused.FusedSaShiMi(model)
    launches = [LAUNCHES[launch]] * len(f.tiers)
    sampler = fused.FusedSampler(f, batch, backend="triton", launches=launches)
    assert _forced_run(model, sampler, 2, batch) <= (1e-5 if dtype == torch.float32 else 1e-9)


def test_a_launch_per_tier_is_required_and_blocks_are_bounded() -> None:
    f = fused.FusedSaShiMi(tiny(torch.float32, pool=(2, 2)))
    with pytest.raises(ValueError, match="3 tiers need as many launches"):
        fused.FusedSampler(f, 2, backend="torch", launches=[fused.Launch(block=2, warps=4)])
    for block in (3, 16):  # 16 rows gave wrong logits on an H200
        with pytest.raises(ValueError, match=r"power of two up to 4 rows; got"):
            fused.FusedSampler(f, 2, backend="torch",
                               launches=[fused.Launch(block=block, warps=4)] * 3)  # fmt: skip


@pytest.mark.parametrize(
    ("batch", "want"),
    [(1, [(1, 4), (1, 8), (1, 8)]), (64, [(1, 4), (1, 8), (1, 8)]),
     (256, [(1, 4), (1, 4), (1, 8)]), (1024, [(4, 8), (2, 4), (4, 8)])],
)  # fmt: skip
def test_the_default_launches_are_the_sweeps_fastest(batch: int, want: list[object]) -> None:
    """The SC09 preset's widths (64, 128, 256): the settings the H200 sweep measured fastest
    (benchmarks/README.md)."""
    got = [fused.default_launch(width, batch) for width in (64, 128, 256)]
    assert [(x.block, x.warps) for x in got] == want
    assert all(x.reg and x.tile == fused.TILE and x.ssm_tile == fused.SSM_TILE for x in got)


@interpreted
@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.7, 0.9), (0.0, 1.0)])
def test_the_kernel_samples_what_its_twin_samples(temperature: float, top_p: float) -> None:
    """Same noise (the counter-based hash), same nucleus, same tokens and log-likelihoods,
    over two periods of free sampling."""
    model = tiny(torch.float64, pool=(2, 2))
    f = fused.FusedSaShiMi(model)
    out = []
    for backend in ("triton", "torch"):
        sampler = fused.FusedSampler(f, 3, backend=backend)
        sampler.start(start_token=model.start_token, seed=torch.tensor([11]),
                      temperature=temperature, top_p=top_p)  # fmt: skip
        none = torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, 3, dtype=torch.int32)
        out.append([sampler.run(*none) for _ in range(2)])
    for (tok_a, lp_a), (tok_b, lp_b) in zip(*out, strict=True):
        assert torch.equal(tok_a, tok_b)
        assert torch.allclose(lp_a, lp_b, rtol=0, atol=1e-9)


def test_gumbel_max_on_the_hash_samples_the_softmax() -> None:
    """The noise is uniform enough: 40,000 draws of ``argmax(logits + Gumbel)`` over 4 classes
    land within 4.5 standard deviations of the softmax probabilities."""
    logits = torch.tensor([1.0, 0.0, -1.0, 0.5])
    rows, classes = torch.arange(40_000), torch.arange(4)
    u = fused.uniforms(torch.tensor([5]), torch.tensor([2]), 16, 7, rows, classes)
    assert float(u.min()) > 0
    assert float(u.max()) < 1
    drawn = (logits + -torch.log(-torch.log(u))).argmax(-1)
    freq = torch.bincount(drawn, minlength=4).double() / len(rows)
    p = torch.softmax(logits.double(), -1)
    sigma = (p * (1 - p) / len(rows)).sqrt()
    assert bool(((freq - p).abs() <= 4.5 * sigma).all()), (freq, p)
    # Another position, row or period gives other noise.
    other = fused.uniforms(torch.tensor([5]), torch.tensor([3]), 16, 7, rows[:8], classes)
    assert not torch.equal(other, u[:8])


@pytest.mark.parametrize("overlap", [True, False])
def test_a_graph_frozen_period_replays_as_eager_steps(overlap: bool) -> None:
    """``make_fx`` freezes the period's Python control flow as a CUDA graph capture does;
    replaying the frozen graphs (the first period's, then the steady one) period after
    period (new forced tokens in the static input buffers) must equal eager stepping. A
    schedule or sample index kept in Python state would replay the first period's tiers
    forever."""
    graphs: list[torch.fx.GraphModule] = []

    def frozen(sampler: fused.FusedSampler, first: bool) -> torch.fx.GraphModule:
        tiers = len(sampler.f.tiers)

        def period(*buffers: torch.Tensor) -> None:
            sampler.period_fn(fused.Buffers.from_flat(buffers, tiers), first=first)

        graph = make_fx(period)(*[t.clone() for t in sampler.b.flat()])
        assert "_local_scalar_dense" not in graph.code  # no host syncs (.item(), int(tensor))
        return graph

    def run_period(sampler: fused.FusedSampler, k: int) -> bool:
        if not graphs:
            graphs.extend([frozen(sampler, True), frozen(sampler, False)])
        graphs[k > 0](*sampler.b.flat())
        return False

    sampler, _ = _periods_equal_eager(run_period, overlap)
    assert int(sampler.b.counter) == 4


def test_the_period_traces_on_fake_cuda_tensors() -> None:
    """On fake CUDA tensors (no GPU needed): no tensor is made on the wrong device and
    nothing synchronises with the host."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    model = tiny(torch.float32, pool=(2, 2))
    f = fused.FusedSaShiMi(model)
    with FakeTensorMode(allow_non_fake_inputs=True):
        sampler = fused.FusedSampler(f.to("cuda"), 4, backend="torch", graph=False)
        sampler.start(start_token=model.start_token,
                      seed=torch.zeros(1, dtype=torch.long, device="cuda"), temperature=0.9,
                      top_p=0.95)  # fmt: skip
        tokens, logp = sampler.run(sampler.b.forced, sampler.b.use)
        assert tokens.device.type == "cuda"
        assert logp.device.type == "cuda"
        assert tokens.shape == (4, 4)


@interpreted
def test_generate_with_the_triton_engine_continues_a_prefix_and_reports_its_likelihood() -> None:
    model = tiny(torch.float64, pool=(2, 2))
    prefix = torch.randint(0, 16, (3, 5), generator=torch.Generator().manual_seed(4))
    out = generate(model, 3, 10, prefix=prefix, batch=2, engine="triton",  # type: ignore[arg-type]
                   generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert out.engine.startswith("triton")
    assert torch.equal(out.samples[:, :5], prefix)
    assert int(out.samples.min()) >= 0
    assert int(out.samples.max()) < 16
    want = model.log_likelihood(out.samples, start=5)
    assert torch.allclose(out.log_likelihood, want, rtol=0, atol=1e-9)
    again = generate(model, 3, 10, prefix=prefix, batch=2, engine="triton",  # type: ignore[arg-type]
                     generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.equal(again.samples, out.samples)  # reproducible from the generator
    with pytest.raises(ValueError, match=r"prefix tokens must be in \[0, 15\]"):
        generate(model, 1, 10, prefix=torch.full((1, 3), 16), engine="triton")  # type: ignore[arg-type]


def test_auto_picks_triton_only_on_cuda_and_says_why_not_elsewhere() -> None:
    model = tiny(torch.float32, pool=(2, 2))
    assert fused.TRITON.auto(model, 4, torch.device("cuda")) in (None, fused.triton_available())
    assert fused.TRITON.auto(model, 4, torch.device("cpu")) == "runs on CUDA GPUs"
    label, _, why = choose_engine(model, "auto", batch=4, device=torch.device("cpu"))  # type: ignore[arg-type]
    assert label.startswith("compiled") or "triton: runs on CUDA GPUs" in why


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pool": (2, 3)}, "power-of-two sizes"),
    ],
)
def test_models_the_kernel_does_not_run_are_refused_with_the_reason(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(EngineUnavailable, match=message):
        fused.FusedSaShiMi(tiny(torch.float32, **overrides))


def test_on_the_cpu_without_the_interpreter_the_engine_says_where_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(EngineUnavailable, match="runs on CUDA GPUs"):
        fused.TRITON.prepare(tiny(), 1, torch.device("cpu"))


# -- compiled for the GPU, on the CPU ----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["s4", "s4d", "s4-unet"])
@pytest.mark.parametrize("batch", [1, 256, 1024])
def test_every_kernel_variant_of_the_sc09_preset_compiles_for_sm90_without_spills(
    name: str, batch: int
) -> None:
    """The paper's SC09 model (widths 64 / 128 / 256, 8 layers per tier, float32), and its
    U-Net (down layers and skips in each tier), at the default launches of three batch sizes
    (one row per program; four): every tier's kernel compiles for sm_90 with no local-memory
    spills (no stack, no LDL / STL). Compiled in a fresh interpreter without
    ``TRITON_INTERPRET`` (the interpreter's kernels cannot be compiled)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = pathlib.Path(__file__).with_name("sm90_compile.py")
    result = subprocess.run([sys.executable, str(script), name, str(batch)], env=env,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert len(report) == 3  # outer, middle, centre
    for tier in report:
        assert tier["stack"] == 0, report
        assert tier["spills"] == 0, report
        assert 0 < tier["registers"] <= 255
