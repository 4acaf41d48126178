"""The template plugin: its records, its backbone's causality and recurrent mode, its kernel's
two modes and its dataset's tones."""

from __future__ import annotations

import pytest
import torch

from audio_core import (
    BackboneSpec,
    ConfigError,
    DatasetSpec,
    KernelSpec,
    ModelSpec,
    Registry,
    resolve_run_config,
)
from audio_core.protocols import DATASET_MEMBERS
from audio_core.testing import check_spec
from audio_run_plugin_example import plugin
from audio_run_plugin_example.config import CausalConvConfig, DecayKernelConfig, TonesConfig
from audio_run_plugin_example.tones import Tones

BACKBONE: BackboneSpec = next(iter(plugin.register_backbones()))
DATASET: DatasetSpec = next(iter(plugin.register_datasets()))
KERNEL: KernelSpec = next(iter(plugin.register_kernels()))


@pytest.mark.parametrize("spec", [KERNEL, BACKBONE, DATASET], ids=lambda s: s.name)
def test_records_are_valid_and_their_configs_round_trip(
    spec: KernelSpec | BackboneSpec | DatasetSpec,
) -> None:
    check_spec(spec)


def build_backbone(**changes: int) -> torch.nn.Module:
    torch.manual_seed(0)
    module: torch.nn.Module = BACKBONE.load_target()(CausalConvConfig(**changes))
    return module.double()


def test_the_backbone_maps_sequences_to_sequences() -> None:
    backbone = build_backbone(d_model=8, n_layers=2)
    x = torch.randn(3, 50, 8, dtype=torch.float64)
    assert backbone(x).shape == (3, 50, 8)


@pytest.mark.parametrize(("kernel_size", "growth", "n_layers"), [(3, 2, 3), (2, 3, 2), (4, 1, 2)])
def test_output_t_depends_exactly_on_the_receptive_field_before_it(
    kernel_size: int, growth: int, n_layers: int
) -> None:
    backbone = build_backbone(
        d_model=4, n_layers=n_layers, kernel_size=kernel_size, dilation_growth=growth
    )
    field = 1 + (kernel_size - 1) * sum(growth**i for i in range(n_layers))
    assert backbone.receptive_field == field
    length, t = 40, 30
    x = torch.randn(1, length, 4, dtype=torch.float64, requires_grad=True)
    # a random projection: the final LayerNorm makes the plain sum over channels constant
    probe = torch.randn(4, dtype=torch.float64)
    (backbone(x)[0, t] @ probe).backward()
    assert x.grad is not None
    reach = x.grad[0].abs().sum(dim=-1)  # per input position
    assert torch.all(reach[t + 1 :] == 0), "output depends on the future"
    assert torch.all(reach[: t - field + 1] == 0), "output depends on inputs beyond its field"
    assert reach[t - field + 1] > 0, "the oldest input in the field has no influence"
    assert reach[t] > 0


def test_batch_items_do_not_interact() -> None:
    backbone = build_backbone(d_model=4, n_layers=2)
    x = torch.randn(4, 20, 4, dtype=torch.float64)
    together = backbone(x)
    alone = torch.cat([backbone(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-12)


def test_stepping_the_backbone_reproduces_its_forward_pass() -> None:
    backbone = build_backbone(d_model=4, n_layers=3, kernel_size=3, dilation_growth=2)
    x = torch.randn(2, 30, 4, dtype=torch.float64)
    backbone.setup_step()  # type: ignore[operator]
    state = backbone.default_state(2)  # type: ignore[operator]
    steps = []
    for t in range(30):
        y, state = backbone.step(x[:, t], state)  # type: ignore[operator]
        steps.append(y)
    torch.testing.assert_close(torch.stack(steps, 1), backbone(x), rtol=0, atol=1e-12)


def build_kernel(channels: int = 1) -> torch.nn.Module:
    torch.manual_seed(0)
    kernel: torch.nn.Module = KERNEL.load_target()(
        DecayKernelConfig(d_state=5), d_model=3, l_max=64, channels=channels
    )
    return kernel.double()


def test_the_kernel_is_its_recurrence_unrolled() -> None:
    kernel = build_kernel(channels=2)
    k, _ = kernel(20)
    assert k.shape == (2, 3, 20)
    kernel.setup_step()  # type: ignore[operator]
    state = kernel.default_state(1)  # type: ignore[operator]
    impulse = torch.zeros(20, 1, 3, dtype=torch.float64)
    impulse[0] = 1.0
    for t in range(20):
        y, state = kernel.step(impulse[t], state)  # type: ignore[operator]
        torch.testing.assert_close(y[0], k[..., t], rtol=0, atol=1e-12)


def test_the_kernel_carries_a_state_through_a_sequence() -> None:
    kernel = build_kernel()
    state = torch.randn(2, 3, 5, dtype=torch.float64)
    u = torch.randn(2, 3, 12, dtype=torch.float64)
    _, k_state = kernel(12, state=state)
    assert k_state is not None
    # Stepping zeros from a state gives exactly what the state adds to the convolution.
    x = state.clone()
    for t in range(12):
        y, x = kernel.step(torch.zeros(2, 3, dtype=torch.float64), x)  # type: ignore[operator]
        torch.testing.assert_close(y, k_state[..., t], rtol=0, atol=1e-12)
    x = state.clone()
    for t in range(12):
        _, x = kernel.step(u[..., t], x)  # type: ignore[operator]
    torch.testing.assert_close(kernel.forward_state(u, state), x, rtol=0, atol=1e-12)  # type: ignore[operator]


def build_tones(**changes: float) -> Tones:
    data = DATASET.load_target()(TonesConfig(**changes))
    assert all(hasattr(data, member) for member in DATASET_MEMBERS)
    tones: Tones = data.tones
    return tones


def test_the_dataset_has_what_the_runner_needs() -> None:
    data = DATASET.load_target()(TonesConfig(n_examples=20, sample_len=800))
    sizes = {name: len(data.split(name)) for name in ("train", "val", "test")}
    assert sizes == {"train": 16, "val": 2, "test": 2}
    codes, label = data.split("val")[0]
    assert codes.shape == (800,)
    assert codes.dtype == torch.int64
    assert label == -1
    assert int(codes.min()) >= 0
    assert int(codes.max()) <= 255
    decoded = data.encoding.decode(codes)
    torch.testing.assert_close(decoded, data.tones[8], rtol=0, atol=1 / 255 + 1e-6)
    with pytest.raises(ValueError, match="split must be train, val or test; got 'dev'"):
        data.split("dev")


def test_each_tone_peaks_at_its_frequency() -> None:
    tones = build_tones(n_examples=8, sample_len=16000, sample_rate=16000)
    for index in range(8):
        clip = tones[index]
        assert clip.dtype == torch.float32
        assert clip.shape == (16000,)
        assert float(clip.abs().max()) <= 0.5 + 1e-6
        peak_hz = int(torch.fft.rfft(clip.double()).abs().argmax())  # 1 Hz bins for 1 s
        assert abs(peak_hz - tones.frequency(index)) <= 1.0
        assert 110.0 <= tones.frequency(index) < 880.0


def test_tones_are_deterministic_and_seeded() -> None:
    first, again = build_tones(seed=3, n_examples=4), build_tones(seed=3, n_examples=4)
    other = build_tones(seed=4, n_examples=4)
    assert all(torch.equal(first[i], again[i]) for i in range(4))
    assert not any(torch.equal(first[i], other[i]) for i in range(4))
    assert torch.equal(first[2], build_tones(seed=3, n_examples=4)[2])  # access order irrelevant


def test_out_of_range_index() -> None:
    with pytest.raises(IndexError, match="index 4 out of range for 4 tones"):
        build_tones(n_examples=4)[4]


def test_config_rules_are_reported_at_the_dataset_section() -> None:
    model = ModelSpec(name="m", config_cls=CausalConvConfig, target="m:b", summary="m")
    registry = Registry({"datasets": [DATASET], "models": [model]})
    with pytest.raises(ConfigError) as info:
        resolve_run_config(
            registry, model="m", dataset="example-tones", overrides=["dataset.max_freq=9000"]
        )
    assert info.value.problems == (
        "max_freq (9000.0) must be below the Nyquist frequency (8000.0 Hz at sample_rate 16000) "
        "@ $.dataset (from --dataset, override 'dataset.max_freq=9000')",
    )
