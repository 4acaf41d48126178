"""The models and the backbone are registered, and their configs validate and round-trip."""

from __future__ import annotations

import pytest
import torch

from audio_core.plugins import make_plugin_manager
from audio_core.registry import Registry
from audio_core.testing import check_spec
from audio_models.config import SampleRNNConfig, SaShiMiConfig, SaShiMiModelConfig
from audio_models.lm import AutoregressiveModel
from audio_models.sashimi import SaShiMi
from ssm_kernels import S4Config, S4DConfig


def registry() -> Registry:
    return Registry.from_plugin_manager(make_plugin_manager(environ={}))


def test_models_and_backbone_are_registered() -> None:
    reg = registry()
    assert set(reg.models) >= {"sashimi", "wavenet", "samplernn"}
    assert "sashimi" in reg.backbones
    for name in ("sashimi", "wavenet", "samplernn"):
        check_spec(reg.models[name])
    check_spec(reg.backbones["sashimi"])


def test_the_backbone_maps_sequences_to_sequences() -> None:
    spec = registry().backbones["sashimi"]
    backbone = spec.load_target()(SaShiMiConfig(d_model=8, n_layers=1, d_state=4, l_max=32))
    assert isinstance(backbone, SaShiMi)
    assert backbone(torch.randn(2, 32, 8)).shape == (2, 32, 8)


def test_a_model_record_builds_an_autoregressive_model() -> None:
    spec = registry().models["sashimi"]
    model = spec.load_target()(spec.config_cls(d_model=8, n_layers=1, d_state=4, l_max=32))
    assert isinstance(model, AutoregressiveModel)


def test_kernel_options_pass_through() -> None:
    assert SaShiMiConfig().kernel_config() == S4Config()
    config = SaShiMiConfig(kernel="s4d", init="diag-lin", d_state=16, discretization="bilinear")
    assert config.kernel_config() == S4DConfig(
        init="diag-lin", d_state=16, discretization="bilinear"
    )
    assert SaShiMiConfig(init="legt", rank=2).kernel_config() == S4Config(init="legt", rank=2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SaShiMiModelConfig(kernel="s4d", init="legs"), "'init' must be in"),
        (lambda: SaShiMiModelConfig(init="legt"), "init 'legt' needs rank >= 2"),
        (lambda: SaShiMiModelConfig(pool=(4, 0)), r"'pool' must hold integers >= 1; got \(4, 0\)"),
        (lambda: SampleRNNConfig(frame_sizes=(16, 3)), "multiple of the next; got 16 then 3"),
        (lambda: SampleRNNConfig(cell="rnn"), "'cell' must be in"),
    ],
)
def test_bad_configs_name_the_field(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]
