"""The compiled generation engines against the eager steps they replace.

The fused C step must give the eager ``step``'s logits, tier boundaries and all, for every
SaShiMi variant: to float32 rounding for float32 models and to 1e-9 for float64 models (both
compute the same maths; the C step in float64).
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from audio_models.builders import build_samplernn, build_sashimi, build_wavenet
from audio_models.config import SampleRNNConfig, SaShiMiModelConfig, WaveNetConfig
from audio_models.fast import engine as fast
from audio_models.fast import samplernn as fast_samplernn
from audio_models.fast import wavenet as fast_wavenet
from audio_models.lm import BackboneLM
from audio_models.samplernn import SampleRNN
from audio_models.sampling import EagerStepper, EngineUnavailable, choose_engine
from audio_models.testing import kernel

#: Developers' machines without a C compiler skip what needs one; CI sets
#: AUDIO_MODELS_COMPILER_REQUIRED=1 (and installs gcc), which turns the skip into a failure.
needs_cc = pytest.mark.skipif(
    fast.find_compiler() is None and not os.environ.get("AUDIO_MODELS_COMPILER_REQUIRED"),
    reason="no C compiler (set CC or install gcc)",
)

VARIANTS: dict[str, dict[str, object]] = {
    "s4-glu-pool-2-3": {"pool": (2, 3)},
    "s4d-unet-no-glu": {"pool": (2, 2), "kernel": kernel("s4d", d_state=8), "unet": True,
                        "glu": False},
    "s4-unet-layernorm": {"pool": (2, 2), "unet": True, "norm": "layer", "n_layers": 2},
    "s4-flat": {"pool": (), "n_layers": 2},
    "s4d-one-pool-ff3": {"pool": (4,), "kernel": kernel("s4d", d_state=8), "ff": 3, "expand": 3},
    "s4-no-ff": {"pool": (2,), "ff": 0},
    "s4-legt-rank2": {"pool": (2,), "kernel": kernel("s4", d_state=8, init="legt", rank=2)},
    # A trained Q of its own (not P): the C step's sums over the modes must use Q.
    "s4-separate-q": {"pool": (2,), "kernel": kernel("s4", d_state=8, separate_q=True)},
    # 12 channels: not a whole number of SIMD vectors (8 doubles, 16 floats), so padded lanes
    "s4-width-12": {"pool": (2,), "d_model": 12},
}  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    mp = pytest.MonkeyPatch()
    mp.setenv("AUDIO_MODELS_CACHE", str(tmp_path_factory.mktemp("cc")))
    yield
    mp.undo()


def tiny(dtype: torch.dtype = torch.float32, **overrides: object) -> BackboneLM:
    torch.manual_seed(0)
    settings: dict[str, object] = {
        "d_model": 8,
        "n_layers": 1,
        "kernel": kernel("s4", d_state=8),
        "l_max": 64,
        "bits": 4,
    }
    model = build_sashimi(SaShiMiModelConfig(**{**settings, **overrides}))  # type: ignore[arg-type]
    # Non-trivial weights everywhere (LayerNorms start at 1 / 0, biases at small values).
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.to(dtype).eval()  # type: ignore[return-value]


def _compare(
    model: BackboneLM, batch: int, steps: int, mode: str = "linear", workers: int | None = None
) -> float:
    model.setup_rnn(mode)
    eager = EagerStepper(model, batch, torch.device("cpu"))
    compiled = fast.CompiledStepper(fast.CompiledSaShiMi(model), batch, workers)
    tokens = torch.randint(
        0, model.n_classes, (steps, batch), generator=torch.Generator().manual_seed(1)
    )
    worst = 0.0
    with torch.no_grad():
        for t in range(steps):
            a = eager.step(tokens[t])
            b = compiled.step(tokens[t])
            assert b.shape == a.shape == (batch, model.n_classes)
            worst = max(
                worst,
                float((a.double() - b.double()).abs().max() / a.double().square().mean().sqrt()),
            )
    return worst


@needs_cc
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_compiled_step_equals_the_eager_step_in_float32(variant: str) -> None:
    # 50 steps cross every tier boundary of these pools many times.
    assert _compare(tiny(**VARIANTS[variant]), batch=2, steps=50) <= 1e-4


@needs_cc
@pytest.mark.parametrize(
    "variant",
    ["s4-glu-pool-2-3", "s4d-unet-no-glu", "s4-legt-rank2", "s4-separate-q", "s4-width-12"],
)
@pytest.mark.parametrize("mode", ["linear", "dense"])
def test_compiled_step_equals_the_eager_step_in_float64(variant: str, mode: str) -> None:
    assert _compare(tiny(torch.float64, **VARIANTS[variant]), batch=1, steps=40, mode=mode) <= 1e-9


@needs_cc
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_batch_split_across_threads_steps_as_the_eager_model(workers: int) -> None:
    # Widths past the tiny ones and a batch that does not divide evenly: every row of the
    # layer-by-layer products and every part of the split.
    wide = tiny(d_model=32, pool=(2, 2), unet=True)
    assert _compare(wide, batch=5, steps=20, workers=workers) <= 1e-4
    exact = tiny(torch.float64, d_model=24, pool=(2,), kernel=kernel("s4d", d_state=8))
    assert _compare(exact, batch=7, steps=12, workers=workers) <= 1e-9


@needs_cc
@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize(
    "variant", ["s4-glu-pool-2-3", "s4d-unet-no-glu", "s4-legt-rank2", "s4-width-12", "s4-flat"]
)
def test_a_team_of_threads_steps_one_sequence_as_the_eager_model(
    variant: str, workers: int
) -> None:
    # Batch 1 cannot be split: the team shares each step (channel blocks, the projections'
    # inputs and outputs, the pools' frames). Widths of 8 and 12 leave some threads without
    # a channel block of their own.
    stepper = fast.CompiledStepper(fast.CompiledSaShiMi(tiny(**VARIANTS[variant])), 1, workers)
    assert stepper.team is not None
    assert stepper.own_threads
    stepper.close()
    assert stepper.team is None
    stepper.close()  # twice is harmless
    assert _compare(tiny(**VARIANTS[variant]), batch=1, steps=40, workers=workers) <= 1e-4
    exact = tiny(torch.float64, **VARIANTS[variant])
    assert _compare(exact, batch=1, steps=40, workers=workers) <= 1e-9


@needs_cc
def test_a_team_refuses_an_out_of_range_token_and_steps_on() -> None:
    model = tiny(**VARIANTS["s4-glu-pool-2-3"])
    stepper = fast.CompiledStepper(fast.CompiledSaShiMi(model), 1, 2)
    with pytest.raises(ValueError, match=r"a token is outside \[0, 15\]"):
        stepper.step(torch.tensor([16]))
    assert stepper.step(torch.tensor([3])).shape == (1, 16)  # no thread left waiting
    stepper.close()


@given(st.integers(1, 9), st.integers(1, 70), st.integers(1, 20))
def test_weights_are_laid_out_in_panels_of_outputs(n_in: int, n_out: int, width: int) -> None:
    wt = torch.randn(n_in, n_out, dtype=torch.float64)
    flat = fast.panels(wt, width)
    assert flat.shape == (n_in * n_out,)
    for i, o in itertools.product(range(n_in), range(n_out)):
        first = o // width * width  # panel o // width starts after the full panels before it
        ld = min(width, n_out - first)
        assert flat[first * n_in + i * ld + o - first] == wt[i, o]
    if n_out <= width:
        assert torch.equal(flat, wt.reshape(-1))


def _kinds(compiled: fast.CompiledSaShiMi) -> set[int]:
    """The recurrences' layouts of a compiled model's S4 layers (the plan's layer kinds)."""
    plan = compiled.plan
    first = fast.HEAD + int(plan[0]) * fast.TIER
    kinds = {int(plan[k + 1]) for k in range(first, len(plan), fast.LAYER)}
    return kinds - {fast.FEEDFORWARD}


@needs_cc
@pytest.mark.parametrize("scaled", [True, False])
@pytest.mark.parametrize("variant", ["s4-glu-pool-2-3", "s4-legt-rank2", "s4-separate-q"])
def test_s4_steps_in_either_basis_of_its_states(
    monkeypatch: pytest.MonkeyPatch, scaled: bool, variant: str
) -> None:
    # By default S4's tables work on the states divided by G (two tables fewer); a layer with
    # a |G| outside fast.SCALED_G keeps the plain layout. Both give the eager logits.
    if not scaled:
        monkeypatch.setattr(fast, "SCALED_G", (math.inf, math.inf))
    want = {fast.DPLR_SCALED if scaled else fast.DPLR}
    for dtype, bound in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
        model = tiny(dtype, **VARIANTS[variant])
        assert _kinds(fast.CompiledSaShiMi(model)) == want
        assert _compare(model, batch=3, steps=24) <= bound
        assert _compare(model, batch=1, steps=24, workers=2) <= bound


@needs_cc
@pytest.mark.parametrize(
    ("dtype", "d_model"),
    [(torch.float32, 72), (torch.float32, 68), (torch.float64, 40), (torch.float64, 36)],
)
def test_projections_wider_than_a_panel_step_as_the_eager_model(
    dtype: torch.dtype, d_model: int
) -> None:
    # The centre's GLU and feed-forward give 4 d_model outputs: past one panel (256 floats,
    # 128 doubles), with a last panel of a whole number of 2-vector strips (72, 40: the
    # batched rows' path) or not (68, 36: row by row); a team splits the outputs inside a panel.
    bound = 1e-4 if dtype == torch.float32 else 1e-9
    model = tiny(dtype, d_model=d_model, pool=(2,))
    assert _compare(model, batch=5, steps=8, workers=1) <= bound
    assert _compare(model, batch=5, steps=8, workers=2) <= bound
    assert _compare(model, batch=1, steps=8, workers=3) <= bound


@given(st.integers(1, 200), st.none() | st.integers(1, 16))
def test_a_batch_is_split_into_contiguous_parts(batch: int, workers: int | None) -> None:
    parts = fast.split_batch(batch, workers)
    assert parts[0][0] == 0
    assert parts[-1][1] == batch
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert all(hi > lo for lo, hi in parts)
    limit = workers if workers is not None else torch.get_num_threads()
    assert len(parts) <= min(batch, limit)
    assert max(hi - lo for lo, hi in parts) - min(hi - lo for lo, hi in parts) <= batch // len(
        parts
    )


@needs_cc
def test_generate_gives_the_same_clips_with_either_engine() -> None:
    model = tiny(**VARIANTS["s4-glu-pool-2-3"])
    runs = {
        engine: model.generate(
            3, 40, batch=2, engine=engine, generator=torch.Generator().manual_seed(5)
        )
        for engine in ("eager", "compiled")
    }
    assert runs["eager"].engine == "eager"
    assert runs["compiled"].engine.startswith("compiled")
    assert torch.equal(runs["eager"].samples, runs["compiled"].samples)
    assert torch.allclose(runs["eager"].log_likelihood, runs["compiled"].log_likelihood, rtol=1e-5)


@needs_cc
@pytest.mark.parametrize(("batch", "threads"), [(1, 2), (2, 2), (3, 1)])
@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
@pytest.mark.parametrize("prefix_len", [0, 5, 140])
def test_sampling_inside_the_c_step_draws_the_eager_clips(
    batch: int, threads: int, temperature: float, prefix_len: int
) -> None:
    # SaShiMi's C step samples a block of 128 steps per call (noise drawn per block): the
    # clips are the eager engine's draw for draw, across block boundaries, with and without a
    # prefix (forced inside and across a block), for a team (batch 1 on 2 threads), a split
    # batch and one thread.
    _same_clips(batch, threads, {"temperature": temperature}, prefix_len)


@needs_cc
@pytest.mark.parametrize(("batch", "threads"), [(1, 2), (3, 1), (2, 2)])
@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 0.9), (0.7, 0.5), (1.3, 0.99)])
@pytest.mark.parametrize("bits", [4, 8])
def test_nucleus_sampling_inside_the_c_step_draws_the_eager_clips(
    batch: int, threads: int, temperature: float, top_p: float, bits: int
) -> None:
    # The nucleus is masked in C as sample_logits masks it (ranked, the mass before each
    # class; only the classes above a threshold that already holds top_p are ranked).
    _same_clips(batch, threads, {"temperature": temperature, "top_p": top_p}, 5, bits=bits)


def _same_clips(
    batch: int, threads: int, options: dict[str, float], prefix_len: int, bits: int = 4
) -> None:
    model = tiny(torch.float64, **{**VARIANTS["s4-glu-pool-2-3"], "bits": bits})
    prefix = torch.randint(0, 16, (3, prefix_len), generator=torch.Generator().manual_seed(2))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        runs = {
            engine: model.generate(
                3,
                150,
                batch=batch,
                engine=engine,
                generator=torch.Generator().manual_seed(4),
                prefix=prefix if prefix_len else None,
                **options,  # type: ignore[arg-type]
            )
            for engine in ("eager", "compiled")
        }
    finally:
        torch.set_num_threads(before)
    assert runs["compiled"].engine.startswith("compiled")
    assert torch.equal(runs["eager"].samples, runs["compiled"].samples)
    assert torch.allclose(
        runs["eager"].log_likelihood, runs["compiled"].log_likelihood, rtol=1e-9, atol=1e-9
    )


@needs_cc
def test_big_batches_sample_fewer_steps_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # The noise of a block is held at once: generate bounds it (NOISE_VALUES draws), here to
    # 10 steps of 2 x 16 classes per call; the clips stay the eager engine's.
    from audio_models import sampling

    monkeypatch.setattr(sampling, "NOISE_VALUES", 2 * 16 * 10)
    calls: list[int] = []
    block = fast.CompiledStepper.sample_block

    def counting(self: fast.CompiledStepper, prev: torch.Tensor, n: int, *rest: object) -> object:
        calls.append(n)
        return block(self, prev, n, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(fast.CompiledStepper, "sample_block", counting)
    model = tiny(**VARIANTS["s4-glu-pool-2-3"])
    runs = {
        engine: model.generate(2, 25, batch=2, engine=engine,
                               generator=torch.Generator().manual_seed(1))
        for engine in ("eager", "compiled")
    }  # fmt: skip
    assert calls == [10, 10, 5]
    assert torch.equal(runs["eager"].samples, runs["compiled"].samples)


@needs_cc
@pytest.mark.parametrize("workers", [1, 2])
def test_a_forced_token_out_of_range_is_refused_by_the_c_sampler(workers: int) -> None:
    # generate checks a prefix first; the C sampler refuses one too (alone or as a team).
    stepper = fast.CompiledStepper(fast.CompiledSaShiMi(tiny()), 1, workers)
    with pytest.raises(ValueError, match=r"a token is outside \[0, 15\]"):
        stepper.sample_block(torch.tensor([0]), 3, torch.full((2, 1), 16), None, 0.0)
    stepper.close()


@needs_cc
def test_auto_picks_compiled_for_sashimi_on_the_cpu_and_eager_for_big_batches() -> None:
    model = tiny()
    cpu = torch.device("cpu")
    label, factory, _ = choose_engine(model, "auto", batch=1, device=cpu)
    assert factory is not None
    assert label == "compiled (fused C step)"
    label, factory, reason = choose_engine(
        model, "auto", batch=fast.COMPILED_MAX_BATCH + 1, device=cpu
    )
    assert factory is None
    assert label == "eager"
    assert "the largest it was measured faster at" in reason
    assert choose_engine(model, "eager", batch=1, device=cpu)[1] is None


def tiny_wavenet(dtype: torch.dtype = torch.float32, kernel_size: int = 3) -> BackboneLM:
    torch.manual_seed(0)
    model = build_wavenet(
        WaveNetConfig(
            residual_channels=4, dilation_channels=6, skip_channels=8, end_channels=5,
            layers=3, blocks=2, d_model=4, d_output=7, bits=4, kernel_size=kernel_size,
        )
    )  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.to(dtype).eval()


def tiny_samplernn(dtype: torch.dtype = torch.float32) -> SampleRNN:
    torch.manual_seed(0)
    model = build_samplernn(
        SampleRNNConfig(frame_sizes=(2, 3, 2), d_hidden=8, n_rnn=2, d_model=4, bits=4, tbptt=0)
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.to(dtype).eval()


def _against_eager(model: object, compiled: object, batch: int, steps: int) -> float:
    """The worst difference of the logits over ``steps`` teacher-forced steps, relative to
    their RMS."""
    eager = EagerStepper(model, batch, torch.device("cpu"))  # type: ignore[arg-type]
    tokens = torch.randint(0, 16, (steps, batch), generator=torch.Generator().manual_seed(1))
    worst = 0.0
    with torch.no_grad():
        for t in range(steps):
            a, b = eager.step(tokens[t]).double(), compiled.step(tokens[t]).double()  # type: ignore[attr-defined]
            worst = max(worst, float((a - b).abs().max() / a.square().mean().sqrt()))
    return worst


@needs_cc
@pytest.mark.parametrize("kernel_size", [2, 3])
def test_the_compiled_wavenet_step_equals_the_eager_step(kernel_size: int) -> None:
    # 40 steps wrap every queue (dilations 1, 2, 4) many times.
    model = tiny_wavenet(kernel_size=kernel_size)
    for workers in (1, 2):  # the batch of 3 split 2 + 1 across threads
        compiled = fast_wavenet.CompiledWaveNetStepper(
            fast_wavenet.CompiledWaveNet(model), 3, workers
        )
        assert _against_eager(model, compiled, 3, 40) <= 1e-4
    model = tiny_wavenet(torch.float64, kernel_size=kernel_size)
    compiled = fast_wavenet.CompiledWaveNetStepper(fast_wavenet.CompiledWaveNet(model), 1)
    assert _against_eager(model, compiled, 1, 40) <= 1e-9


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_compiled_samplernn_step_equals_the_eager_step(dtype: torch.dtype) -> None:
    # frames of 2, 6 and 12 samples: 40 steps cross every tier boundary
    model = tiny_samplernn(dtype)
    folded = fast_samplernn.FoldedSampleRNN(model)
    compiled = fast_samplernn.FoldedSampleRNNStepper(folded, 2, torch.device("cpu"))
    assert _against_eager(model, compiled, 2, 40) <= (1e-4 if dtype == torch.float32 else 1e-9)


@needs_cc
@pytest.mark.parametrize("which", ["wavenet", "samplernn"])
def test_wavenet_and_samplernn_draw_the_same_clips_with_either_engine(which: str) -> None:
    model = tiny_wavenet() if which == "wavenet" else tiny_samplernn()
    runs = {
        engine: model.generate(
            3, 30, batch=2, engine=engine, generator=torch.Generator().manual_seed(5)
        )
        for engine in ("eager", "auto")
    }
    assert runs["auto"].engine.startswith("compiled")
    assert torch.equal(runs["eager"].samples, runs["auto"].samples)
    assert torch.allclose(runs["eager"].log_likelihood, runs["auto"].log_likelihood, rtol=1e-5)


def test_models_without_a_compiled_step_fall_back_or_say_why() -> None:
    from audio_models.wavenet import WaveNet

    bare = BackboneLM(WaveNet(4, d_output=4, residual_channels=4, dilation_channels=4,
                              skip_channels=4, end_channels=4, dilations=(1, 2)),
                      d_model=4, d_out=4, bits=4)  # fmt: skip
    assert bare.engines == {}  # built by hand: the builders attach the engines
    assert bare.generate(1, 5, engine="auto").engine == "eager"
    message = "--engine compiled: BackboneLM over WaveNet supports only auto, eager"
    with pytest.raises(EngineUnavailable, match=message):
        bare.generate(1, 5, engine="compiled")
    cpu = torch.device("cpu")
    with pytest.raises(EngineUnavailable, match="the compiled engine runs SaShiMi models, not "):
        fast.COMPILED.prepare(bare, 1, cpu)
    with pytest.raises(EngineUnavailable, match="the compiled WaveNet engine runs WaveNets, not"):
        fast_wavenet.COMPILED_WAVENET.prepare(tiny(), 1, cpu)
    with pytest.raises(EngineUnavailable, match="runs SampleRNNs, not BackboneLM"):
        fast_samplernn.COMPILED_SAMPLERNN.prepare(bare, 1, cpu)
    reason = fast_wavenet.COMPILED_WAVENET.auto(tiny_wavenet(), 65, cpu)
    assert reason == "batch 65 > 64, the largest it was measured faster at"


@needs_cc
def test_one_clip_at_a_time_keeps_its_threads_only_where_the_engine_shares_a_step() -> None:
    # audio-run generate takes one thread for n_batch = 1 (serial work), except for an
    # engine whose threads share one sequence's step: SaShiMi's compiled step.
    from audio_core.runner.generate import one_sequence_threads

    cpu = torch.device("cpu")
    assert one_sequence_threads(tiny(), "auto", cpu)
    assert one_sequence_threads(tiny(), "compiled", cpu)
    assert not one_sequence_threads(tiny(), "eager", cpu)
    assert not one_sequence_threads(tiny_wavenet(), "auto", cpu)
    assert not one_sequence_threads(tiny_wavenet(), "compiled", cpu)


def test_without_a_c_compiler_auto_falls_back_and_compiled_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fast, "_LIBRARIES", {})
    monkeypatch.setattr(fast, "find_compiler", lambda: None)
    monkeypatch.setenv("AUDIO_MODELS_CACHE", str(tmp_path))
    model = tiny()
    fell_back = model.generate(1, 4, engine="auto")
    assert fell_back.engine == "eager"
    assert fell_back.passed_over == (
        "compiled: no C compiler found (set CC, or install cc/gcc/clang); triton: runs on CUDA GPUs"
    )
    assert model.generate(1, 4, engine="eager").passed_over == ""  # asked for: nothing to say
    with pytest.raises(EngineUnavailable, match="no C compiler found"):
        model.generate(1, 4, engine="compiled")


@needs_cc
def test_the_library_is_compiled_once_and_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fast, "_LIBRARIES", {})
    monkeypatch.setenv("AUDIO_MODELS_CACHE", str(tmp_path))
    fast.load_library("float")
    (built,) = tmp_path.glob("sashimi_step-float-*.so")
    stamp = built.stat().st_mtime_ns
    monkeypatch.setattr(fast, "_LIBRARIES", {})
    fast.load_library("float")
    assert built.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [built.name]  # no temporary left behind


@needs_cc
def test_an_out_of_range_token_is_refused() -> None:
    model = tiny()
    stepper = fast.CompiledStepper(fast.CompiledSaShiMi(model), 1)
    with pytest.raises(ValueError, match=r"a token is outside \[0, 15\]"):
        stepper.step(torch.tensor([16]))


@needs_cc
def test_generate_keeps_torch_on_one_thread_while_the_c_step_runs_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Idle OpenMP workers spin on the cores the C step's threads need: while a split batch
    # steps, torch's per-sample ops (the block's noise) run on one thread; the caller's count
    # comes back after.
    seen: list[int] = []
    sample_block = fast.CompiledStepper.sample_block

    def recording(self: fast.CompiledStepper, *args: Any) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(torch.get_num_threads())
        return sample_block(self, *args)

    monkeypatch.setattr(fast.CompiledStepper, "sample_block", recording)
    model = tiny(**VARIANTS["s4-glu-pool-2-3"])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model.generate(2, 200, batch=2, engine="compiled", top_p=0.9)
        assert seen == [1] * 2  # 128 steps per block
        assert torch.get_num_threads() == 2
        seen.clear()
        torch.set_num_threads(1)  # one part: nothing to change
        model.generate(2, 200, batch=2, engine="compiled", top_p=0.9)
        assert seen == [1] * 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
