"""Parity with the reference implementation, on files it made (``../shared/reference/s4``).

The tiny checkpoints are the reference's own models with random weights; its teacher-forced
logits (float64 and float32) and its recurrent mode's logits come with them. The full-size
key lists are those of the released SC09 checkpoints (current and V3 layouts).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from audio_core.config import KernelChoice
from audio_core.testing import reference_dir
from audio_models.builders import build_samplernn, build_sashimi, build_wavenet
from audio_models.config import SampleRNNConfig, SaShiMiModelConfig, WaveNetConfig
from audio_models.lm import AutoregressiveModel
from audio_models.reference import (
    ReferenceFormatError,
    detect_layout,
    infer_model,
    infer_preset,
    load_reference_state,
    mismatches,
    reference_logits,
    rename,
)
from ssm_kernels.config import S4Config, S4DConfig
from ssm_kernels.kernels import DPLRKernel
from ssm_kernels.plugin import S4, S4D


def tiny_dir() -> Path:
    return reference_dir(__file__, "s4", "tiny")


def s4(**options: object) -> KernelChoice:
    return KernelChoice(name="s4", config=S4Config(**options), spec=S4)  # type: ignore[arg-type]


# The reference's tiny models (the overrides its README lists) as our configs.
TINY: dict[str, Callable[[], AutoregressiveModel]] = {
    "sashimi_sc09_tiny": lambda: build_sashimi(
        SaShiMiModelConfig(d_model=16, n_layers=2, kernel=s4(d_state=8))
    ),
    "sashimi_sc09_unet_tiny": lambda: build_sashimi(
        SaShiMiModelConfig(d_model=16, n_layers=2, unet=True, kernel=s4(d_state=8, n_ssm=0))
    ),
    "sashimi_sc09_s4d_tiny": lambda: build_sashimi(
        SaShiMiModelConfig(
            d_model=16,
            n_layers=2,
            kernel=KernelChoice(
                name="s4d", config=S4DConfig(d_state=8, init="diag-legs"), spec=S4D
            ),
        )
    ),
    "wavenet_sc09_tiny": lambda: build_wavenet(
        WaveNetConfig(
            layers=3,
            blocks=2,
            dilation_channels=8,
            residual_channels=8,
            skip_channels=16,
            end_channels=16,
        )
    ),
    "samplernn_sc09_tiny": lambda: build_samplernn(SampleRNNConfig(d_hidden=32, d_model=16)),
}
# The parameter counts the reference's README states for them.
PARAMETERS = {
    "sashimi_sc09_tiny": 97_576,
    "sashimi_sc09_unet_tiny": 121_640,
    "sashimi_sc09_s4d_tiny": 97_528,
    "wavenet_sc09_tiny": 140_688,
    "samplernn_sc09_tiny": 51_872,
}


def converted(name: str, dtype: torch.dtype = torch.float64) -> AutoregressiveModel:
    torch.manual_seed(0)
    model = TINY[name]().to(dtype).eval()
    state = torch.load(tiny_dir() / f"{name}.pt", weights_only=True)
    load_reference_state(model, state, detect_layout(state))
    return model


def golden(name: str) -> dict[str, object]:
    data: dict[str, object] = torch.load(tiny_dir() / f"{name}.golden.pt", weights_only=False)
    return data


def reference_fp64(name: str) -> torch.Tensor:
    files = golden(name)["logits_files"]
    assert isinstance(files, dict)
    return torch.cat([torch.load(tiny_dir() / f, weights_only=True) for f in files["logits"]])


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().pow(2).mean().sqrt())


@pytest.mark.parametrize("name", list(TINY))
def test_the_reference_model_converts_with_its_parameter_count(name: str) -> None:
    model = converted(name)
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS[name]


@pytest.mark.parametrize("name", list(TINY))
def test_converted_models_reproduce_the_reference_logits_in_float64(name: str) -> None:
    model, data = converted(name), golden(name)
    with torch.no_grad():
        ours = reference_logits(model, data["model_input"])  # type: ignore[arg-type]
    assert relative(ours, reference_fp64(name)) <= 1e-9


@pytest.mark.parametrize("name", list(TINY))
def test_converted_models_reproduce_the_reference_logits_in_float32(name: str) -> None:
    model, data = converted(name, torch.float32), golden(name)
    files = data["logits_files"]
    assert isinstance(files, dict)
    theirs = torch.load(tiny_dir() / files["logits_fp32"], weights_only=True)
    with torch.no_grad():
        ours = reference_logits(model, data["model_input"])  # type: ignore[arg-type]
    assert ours.dtype == torch.float32
    assert relative(ours, theirs) <= 1e-5


@pytest.mark.parametrize("name", list(TINY))
def test_the_recurrent_mode_reproduces_the_reference_recurrent_logits(name: str) -> None:
    model, data = converted(name), golden(name)
    inputs = data["rnn_step_inputs"]
    assert isinstance(inputs, torch.Tensor)
    context = getattr(getattr(model, "backbone", None), "context", 0)
    if context:  # the reference steps through its padding; our state starts after it
        inputs = inputs[:, context + 1 :]
    with torch.no_grad():
        model.setup_rnn("linear")
        state = model.default_state(inputs.shape[0])
        steps = []
        for t in range(inputs.shape[1]):
            logits, state = model.step(inputs[:, t], state)
            steps.append(logits)
    ref = data["rnn_logits"]
    assert isinstance(ref, torch.Tensor)
    assert relative(torch.stack(steps, 1), ref) <= 1e-9


def test_a_trained_kernel_length_is_honoured() -> None:
    """A released file's S4 kernels carry l_kernel > 0 and C already tuned to it; reading C
    as plain would be off (~8e-2 in the reference's logits)."""
    name = "sashimi_sc09_tiny"
    state = torch.load(tiny_dir() / f"{name}.pt", weights_only=True)
    untrained = converted(name)
    # What the reference's own first forward pass does: tune C to the input length, here a
    # length below our tiers' (1024, 256, 64), as a trained file would carry.
    tuned = copy.deepcopy(untrained)
    for module in tuned.modules():
        if isinstance(module, DPLRKernel):
            module.retune(max(1, module.l_max // 16))
    trained = {}
    ours = tuned.state_dict()
    for key, value in state.items():
        ours_key = rename({key: value}, "sashimi").popitem()[0]
        trained[key] = ours[ours_key].float() if value.is_floating_point() else ours[ours_key]
    assert {int(v) for k, v in trained.items() if k.endswith("l_kernel")} == {1000, 250, 62}
    model = TINY[name]().double().eval()
    load_reference_state(model, trained, "sashimi")
    x = golden(name)["model_input"]
    with torch.no_grad():
        expected = reference_logits(untrained, x)  # type: ignore[arg-type]
        got = reference_logits(model, x)  # type: ignore[arg-type]
    assert relative(got, expected) <= 1e-6  # C went through float32 on the way
    # The mistake the loader avoids: taking the tuned C as the plain one.
    wrong = TINY[name]().double().eval()
    plain = {k: (torch.tensor(0) if k.endswith("l_kernel") else v) for k, v in trained.items()}
    load_reference_state(wrong, plain, "sashimi")
    with torch.no_grad():
        assert relative(reference_logits(wrong, x), expected) > 0.05  # type: ignore[arg-type]


def read_keys(path: Path) -> dict[str, torch.Tensor]:
    """Shapes only (weights on the meta device); integer buffers (``l_kernel``) as zeros."""
    keys = {}
    for line in path.read_text().splitlines():
        key, shape, dtype = line.split("\t")
        sizes = [int(s) for s in shape.strip("[]").split(",") if s.strip()]
        integer = dtype == "int64"
        keys[key] = (
            torch.zeros(sizes, dtype=torch.int64) if integer else torch.empty(sizes, device="meta")
        )
    return keys


FULL = {
    "sashimi_sc09": (lambda: build_sashimi(SaShiMiModelConfig()), "sashimi", 4_751_072),
    "v3/sashimi_sc09": (lambda: build_sashimi(SaShiMiModelConfig()), "sashimi-v3", 4_751_072),
    "wavenet_sc09": (lambda: build_wavenet(WaveNetConfig()), "wavenet", 4_244_480),
    "samplernn_sc09": (lambda: build_samplernn(SampleRNNConfig()), "samplernn", 35_034_624),
}


@pytest.mark.parametrize("name", list(FULL))
def test_every_released_key_maps_onto_the_preset_model(name: str) -> None:
    build, layout, count = FULL[name]
    keys = read_keys(reference_dir(__file__, "s4", f"{name}.keys.tsv"))
    assert detect_layout(keys) == layout
    model = build()
    assert mismatches(model.state_dict(), rename(keys, layout)) == []
    assert sum(p.numel() for p in model.parameters()) == count


@pytest.mark.parametrize("name", list(FULL))
def test_the_preset_is_inferred_from_a_released_key_list(name: str) -> None:
    _, layout, _ = FULL[name]
    keys = read_keys(reference_dir(__file__, "s4", f"{name}.keys.tsv"))
    model, _ = infer_model(keys, layout)
    assert infer_preset(model, layout) == name.split("/")[-1].replace("_", "-")
    if layout.startswith("sashimi"):
        assert model["kernel"]["dt_transform"] == ("exp" if layout == "sashimi-v3" else "softplus")
        assert (model["d_model"], model["n_layers"], model["pool"]) == (64, 8, [4, 4])


def test_a_file_of_another_model_is_refused_naming_the_keys() -> None:
    with pytest.raises(
        ReferenceFormatError, match=r"not a reference SaShiMi, WaveNet, SampleRNN or DiffWave"
    ):
        detect_layout({"weight": torch.zeros(1)})
    state = torch.load(tiny_dir() / "sashimi_sc09_tiny.pt", weights_only=True)
    model = build_sashimi(SaShiMiModelConfig(d_model=16, n_layers=3, kernel=s4(d_state=8)))
    with pytest.raises(ReferenceFormatError, match=r"missing: backbone\.c_layers\.4\."):
        load_reference_state(model, state, "sashimi")
    wide = build_sashimi(SaShiMiModelConfig(d_model=16, n_layers=2, kernel=s4(d_state=16)))
    with pytest.raises(ReferenceFormatError, match=r"shape: backbone\..*kernel\.C \(1, 64, 4, 2\)"):
        load_reference_state(wide, state, "sashimi")
