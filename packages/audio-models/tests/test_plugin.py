"""The records are registered, their configs validate and round-trip, and the parts they
name are resolved through the registry."""

from __future__ import annotations

import re

import pytest
import torch

from audio_core import ConfigError
from audio_core.manager import make_plugin_manager
from audio_core.registry import Registry
from audio_core.resolve import resolve_run_config
from audio_core.specs import DatasetSpec
from audio_core.testing import check_spec
from audio_models.config import LMConfig, SampleRNNConfig, SaShiMiConfig, SaShiMiModelConfig
from audio_models.lm import AutoregressiveModel
from audio_models.sashimi import SaShiMi
from audio_models.testing import kernel
from ssm_kernels import S4Config, S4DConfig


def registry() -> Registry:
    return Registry.from_plugin_manager(make_plugin_manager(environ={}))


def test_models_backbones_and_presets_are_registered() -> None:
    reg = registry()
    assert set(reg.models) >= {"sashimi", "lm", "wavenet", "samplernn"}
    assert set(reg.backbones) >= {"sashimi", "wavenet"}
    assert set(reg.presets) >= {"sashimi-sc09", "sashimi-sc09-unet", "samplernn-beethoven"}
    for name in ("sashimi", "lm", "wavenet", "samplernn"):
        check_spec(reg.models[name], reg)
    for name in ("sashimi", "wavenet"):
        check_spec(reg.backbones[name], reg)
    assert reg.models["sashimi"].engines == ("eager", "compiled", "triton")  # type: ignore[attr-defined]


def test_the_backbone_maps_sequences_to_sequences() -> None:
    spec = registry().backbones["sashimi"]
    config = SaShiMiConfig(d_model=8, n_layers=1, kernel=kernel(d_state=4), l_max=32)
    backbone = spec.load_target()(config)
    assert isinstance(backbone, SaShiMi)
    assert backbone(torch.randn(2, 32, 8)).shape == (2, 32, 8)


def test_a_model_record_builds_an_autoregressive_model() -> None:
    spec = registry().models["sashimi"]
    model = spec.load_target()(
        SaShiMiModelConfig(d_model=8, n_layers=1, kernel=kernel(d_state=4), l_max=32)
    )
    assert isinstance(model, AutoregressiveModel)


TONES = DatasetSpec(name="t", config_cls=SampleRNNConfig, target="x:y", summary="t")


def resolve(*overrides: str, model: str = "sashimi") -> object:
    reg = registry()
    with_data = Registry(
        {**{k: list(reg.specs(k).values()) for k in ("kernels", "backbones", "models")},
         "datasets": [TONES]}
    )  # fmt: skip
    return resolve_run_config(with_data, model=model, dataset="t", overrides=overrides).model.config


def test_kernels_are_tables_chosen_by_name_with_their_own_fields() -> None:
    config = resolve("model.kernel.name=s4d", "model.kernel.d_state=16", "model.d_model=32")
    assert isinstance(config, SaShiMiModelConfig)
    assert config.kernel.name == "s4d"
    assert config.kernel.config == S4DConfig(d_state=16)
    # A kernel table without a name keeps the default kernel.
    config = resolve("model.kernel.d_state=16", "model.kernel.init=legt", "model.kernel.rank=2")
    assert config.kernel.config == S4Config(d_state=16, init="legt", rank=2)  # type: ignore[attr-defined]


def test_backbones_are_tables_chosen_by_name() -> None:
    config = resolve("model.backbone.name=wavenet", "model.backbone.layers=2", model="lm")
    assert isinstance(config, LMConfig)
    assert config.backbone.name == "wavenet"
    assert config.backbone.config.layers == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.kernel.name=s4dd"], r"unknown kernel 's4dd' — did you mean 's4d'\?"),
        (["model.kernel.d_sate=8"], r"extra fields found \(d_sate\) @ \$\.model\.kernel — did you"),
        (
            ["model.kernel=s4d"],
            r"since audio-run 0.2 a kernel is a table, write kernel.name = 's4d'",
        ),
        (["model.d_state=8"], r"did you mean 'kernel\.d_state'\? \(kernel options live in their"),
        (
            ["model.kernel.init=legt"],
            r"init 'legt' needs rank >= 2; got rank=1 @ \$\.model\.kernel",
        ),
    ],
)
def test_bad_kernel_settings_are_one_line_each(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(*overrides)
    assert len(info.value.problems) == 1
    assert re.search(message, info.value.problems[0]), info.value.problems


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SaShiMiModelConfig(pool=(4, 0)), r"'pool' must hold integers >= 1; got \(4, 0\)"),
        (lambda: SampleRNNConfig(tbptt=100), r"tbptt \(100\) must be a multiple of the top frame"),
        (lambda: SampleRNNConfig(dequantize="a-law"), "'dequantize' must be in"),  # type: ignore[arg-type]
    ],
)
def test_bad_configs_name_the_field(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]
