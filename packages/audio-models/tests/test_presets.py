"""The reference's experiments as presets: each resolves, builds the reference's model (its
parameter count) and carries the experiment's training settings."""

from __future__ import annotations

from typing import Any

import pytest
from attrs import frozen

from audio_core.config import RunConfig
from audio_core.manager import make_plugin_manager
from audio_core.registry import Registry
from audio_core.resolve import merge_sources, structure_run_config
from audio_core.specs import DatasetSpec, PresetSpec
from audio_models.config import SampleRNNConfig
from audio_models.presets import PRESETS

# The parameter counts of the reference's models (``../shared/reference/README.md``).
COUNTS = {
    "sashimi-sc09": 4_751_072,
    "sashimi-youtubemix": 4_751_072,
    "sashimi-beethoven": 4_751_072,
    "wavenet-sc09": 4_244_480,
    "wavenet-youtubemix": 4_244_480,
    "wavenet-beethoven": 4_244_480,
    "samplernn-sc09": 35_034_624,
    "samplernn-youtubemix": 35_034_624,
    "samplernn-beethoven": 35_034_624,
    # albertfgu/diffwave-sashimi, master (../shared/reference/diffwave/README.md)
    "diffwave-sc09": 24_071_681,
    "diffwave-small-sc09": 6_827_393,
    "sashimi-diffwave-sc09": 23_470_971,
    "sashimi-diffwave-small-sc09": 7_734_267,
}


@frozen(kw_only=True)
class _Data:
    sample_len: int = 16000
    train_on: str = "train"


def registry() -> Registry:
    reg = Registry.from_plugin_manager(make_plugin_manager(environ={}))
    # audio-models' tests run without audio-data: stand-ins with the datasets' names.
    datasets = [
        DatasetSpec(name=name, config_cls=_Data, target="x:y", summary=name)
        for name in ("sc09", "youtubemix", "beethoven")
    ]
    kinds: Any = ("kernels", "backbones", "models", "presets")
    return Registry({**{k: list(reg.specs(k).values()) for k in kinds}, "datasets": datasets})


def preset(name: str, reg: Registry) -> RunConfig:
    return structure_run_config(merge_sources(base=reg.presets[name].load()), reg)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_resolves_and_builds_the_reference_model(name: str) -> None:
    reg = registry()
    assert isinstance(reg.presets[name], PresetSpec)
    config = preset(name, reg)
    assert name.endswith(config.dataset.name) or config.dataset.name in name
    if name in COUNTS:
        model = config.model.build()
        assert sum(p.numel() for p in model.parameters()) == COUNTS[name]


def test_the_unet_preset_is_the_reference_unet() -> None:
    config = preset("sashimi-sc09-unet", registry())
    assert config.model.config.unet
    assert config.model.config.kernel.config.n_ssm == 0
    assert config.train.optimizer.weight_decay == 0.1
    assert config.train.scheduler.name == "cosine"
    model = config.model.build()
    # The reference's README: "a slightly larger SaShiMi model (6.8M parameters)".
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(6.8e6, rel=0.01)


def test_samplernn_presets_train_with_tbptt_and_clip_by_value() -> None:
    reg = registry()
    for name in ("samplernn-sc09", "samplernn-beethoven"):
        config = preset(name, reg)
        assert isinstance(config.model.config, SampleRNNConfig)
        assert config.model.config.tbptt == 1024
        assert (config.train.grad_clip, config.train.grad_clip_algorithm) == (1.0, "value")
        assert config.train.batch_size == 128
    assert preset("samplernn-beethoven", reg).model.config.dequantize == "linear"


def test_diffwave_presets_train_as_the_reference() -> None:
    reg = registry()
    for name in ("diffwave-sc09", "sashimi-diffwave-sc09", "sashimi-diffwave-small-uni-sc09"):
        config = preset(name, reg)
        diffusion = config.model.config
        assert (diffusion.T, diffusion.beta_0, diffusion.beta_T) == (200, 1e-4, 0.02)
        assert diffusion.step_embed == (128, 512, 512)
        assert config.train.optimizer.name == "adam"
        assert config.train.optimizer.lr == 2e-4
        assert config.train.scheduler.name == "constant"
        assert config.train.batch_size == 4
        assert config.dataset.config.train_on == "all"  # no split, as the reference trains
    uni = preset("sashimi-diffwave-small-uni-sc09", reg)
    assert not uni.model.config.backbone.config.bidirectional
    model = uni.model.build()
    # The same network with one-channel kernels: the count of the small model less one
    # C (2 x H x 32 complex) per layer's second direction.
    assert sum(p.numel() for p in model.parameters()) == 7_488_507


def test_a_partial_backbone_table_starts_from_the_models_own_backbone() -> None:
    """``model.backbone.d_model=32`` on ``diffwave`` changes one field of its default
    denoiser (DiffWave's SaShiMi), not of the ``sashimi`` backbone's generic defaults; naming
    another backbone starts from that one's defaults."""
    reg = registry()
    base = {"model": {"name": "diffwave", "backbone": {"d_model": 32}}, "dataset": {"name": "sc09"}}
    config = structure_run_config(merge_sources(base=base), reg)
    backbone = config.model.config.backbone
    assert backbone.name == "sashimi"
    assert backbone.config.d_model == 32
    assert (backbone.config.n_layers, backbone.config.bidirectional) == (6, True)
    assert backbone.config.kernel.config.dt_transform == "exp"
    base["model"]["backbone"] = {"name": "wavenet", "layers": 4}
    other = structure_run_config(merge_sources(base=base), reg).model.config.backbone
    assert other.name == "wavenet"
    assert other.config.layers == 4
