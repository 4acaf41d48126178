"""The compiled generation engine against the eager step it replaces.

The fused C step must give the eager ``step``'s logits, tier boundaries and all, for every
SaShiMi variant: to float32 rounding for float32 models and to 1e-9 for float64 models (both
compute the same maths; the C step in float64).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from audio_models.builders import build_sashimi, build_wavenet
from audio_models.config import SaShiMiModelConfig, WaveNetConfig
from audio_models.fast import engine as fast
from audio_models.lm import BackboneLM
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


def _compare(model: BackboneLM, batch: int, steps: int, mode: str = "linear") -> float:
    model.setup_rnn(mode)
    eager = EagerStepper(model, batch, torch.device("cpu"))
    compiled = fast.CompiledStepper(fast.CompiledSaShiMi(model), batch)
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
@pytest.mark.parametrize("variant", ["s4-glu-pool-2-3", "s4d-unet-no-glu"])
@pytest.mark.parametrize("mode", ["linear", "dense"])
def test_compiled_step_equals_the_eager_step_in_float64(variant: str, mode: str) -> None:
    assert _compare(tiny(torch.float64, **VARIANTS[variant]), batch=1, steps=40, mode=mode) <= 1e-9


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
    assert "batched eager steps are faster" in reason
    assert choose_engine(model, "eager", batch=1, device=cpu)[1] is None


def test_models_without_a_compiled_step_fall_back_or_say_why() -> None:
    wavenet = build_wavenet(
        WaveNetConfig(
            residual_channels=4, dilation_channels=4, skip_channels=4, end_channels=4,
            layers=2, blocks=1, d_model=4, d_output=4, bits=4
        )
    )  # fmt: skip
    assert wavenet.engines == {}
    assert wavenet.generate(1, 5, engine="auto").engine == "eager"
    message = "--engine compiled: BackboneLM over WaveNet supports only auto, eager"
    with pytest.raises(EngineUnavailable, match=message):
        wavenet.generate(1, 5, engine="compiled")
    # A SaShiMi with a kernel the C step does not know falls back under auto.
    compiled = fast.COMPILED
    with pytest.raises(EngineUnavailable, match="the compiled engine runs SaShiMi models, not "):
        compiled.prepare(wavenet, 1, torch.device("cpu"))


def test_without_a_c_compiler_auto_falls_back_and_compiled_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fast, "_LIBRARIES", {})
    monkeypatch.setattr(fast, "find_compiler", lambda: None)
    monkeypatch.setenv("AUDIO_MODELS_CACHE", str(tmp_path))
    model = tiny()
    assert model.generate(1, 4, engine="auto").engine == "eager"
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
