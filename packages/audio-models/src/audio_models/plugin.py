"""The ``sashimi-audio-models`` plugin, loaded through its ``audio_run`` entry point.

It registers the ``sashimi`` and ``wavenet`` backbones, the ``sashimi``, ``lm``, ``wavenet``,
``samplernn`` and ``diffwave`` models, the presets of the reference's experiments
(``sashimi-sc09``, ...) and the ``audio-run checkpoint`` command. Only torch-free modules
are imported here.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from audio_core import BackboneSpec, ModelSpec, PresetSpec, hookimpl

from . import commands
from .config import (
    SASHIMI_BACKBONE,
    WAVENET_BACKBONE,
    DiffWaveConfig,
    LMConfig,
    SampleRNNConfig,
    SaShiMiModelConfig,
    WaveNetConfig,
)
from .presets import PRESETS


@hookimpl
def register_backbones() -> Iterator[BackboneSpec]:
    yield SASHIMI_BACKBONE
    yield WAVENET_BACKBONE


@hookimpl
def register_models() -> Iterator[ModelSpec]:
    yield ModelSpec(
        name="sashimi",
        config_cls=SaShiMiModelConfig,
        target="audio_models.builders:build_sashimi",
        summary="SaShiMi autoregressive waveform model (any kernel, pooling 4x4)",
        engines=("eager", "compiled", "triton"),
    )
    yield ModelSpec(
        name="lm",
        config_cls=LMConfig,
        target="audio_models.builders:build_lm",
        summary="language model over any registered backbone (model.backbone.name=...)",
        engines=("eager", "compiled", "triton"),
    )
    yield ModelSpec(
        name="wavenet",
        config_cls=WaveNetConfig,
        target="audio_models.builders:build_wavenet",
        summary="WaveNet: dilated causal convolutions, gated activations",
        engines=("eager", "compiled"),
    )
    yield ModelSpec(
        name="samplernn",
        config_cls=SampleRNNConfig,
        target="audio_models.builders:build_samplernn",
        summary="SampleRNN: frame-level GRU tiers over a sample-level MLP",
        engines=("eager", "compiled"),
    )
    yield ModelSpec(
        name="diffwave",
        config_cls=DiffWaveConfig,
        target="audio_models.builders:build_diffwave",
        summary="DiffWave: denoising diffusion of waveforms (SaShiMi or WaveNet denoiser)",
    )


@hookimpl
def register_presets() -> Iterator[PresetSpec]:
    for name, (function, summary) in PRESETS.items():
        yield PresetSpec(name=name, target=f"audio_models.presets:{function}", summary=summary)


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.register(subparsers)
