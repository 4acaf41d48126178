"""The ``sashimi-audio-models`` plugin, loaded through its ``audio_run`` entry point.

It registers the ``sashimi`` backbone and the ``sashimi``, ``wavenet`` and ``samplernn``
models. Only the torch-free config module is imported here.
"""

from __future__ import annotations

from collections.abc import Iterator

from audio_core import BackboneSpec, ModelSpec, hookimpl

from .config import SampleRNNConfig, SaShiMiConfig, SaShiMiModelConfig, WaveNetConfig


@hookimpl
def register_backbones() -> Iterator[BackboneSpec]:
    yield BackboneSpec(
        name="sashimi",
        config_cls=SaShiMiConfig,
        target="audio_models.builders:build_sashimi_backbone",
        summary="SaShiMi: multi-scale S4 stack with pooling (sequence to sequence)",
    )


@hookimpl
def register_models() -> Iterator[ModelSpec]:
    yield ModelSpec(
        name="sashimi",
        config_cls=SaShiMiModelConfig,
        target="audio_models.builders:build_sashimi",
        summary="SaShiMi autoregressive waveform model (S4/S4D, pooling 4x4)",
    )
    yield ModelSpec(
        name="wavenet",
        config_cls=WaveNetConfig,
        target="audio_models.builders:build_wavenet",
        summary="WaveNet: dilated causal convolutions, gated activations",
    )
    yield ModelSpec(
        name="samplernn",
        config_cls=SampleRNNConfig,
        target="audio_models.builders:build_samplernn",
        summary="SampleRNN: 3-tier frame-level RNNs over a sample-level MLP",
    )
