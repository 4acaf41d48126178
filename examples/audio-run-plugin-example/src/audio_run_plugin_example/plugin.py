"""The plugin module named by the ``audio_run`` entry point.

It imports only ``audio_core`` and the config classes: ``audio-run --help``, ``plugins`` and
``list`` load it, and must not pay for torch. The code that needs torch is named by ``target``
and imported only when a run builds the component.
"""

from __future__ import annotations

from collections.abc import Iterator

from audio_core import BackboneSpec, DatasetSpec, KernelSpec, hookimpl

from .config import CausalConvConfig, DecayKernelConfig, TonesConfig


@hookimpl
def register_kernels() -> Iterator[KernelSpec]:
    yield KernelSpec(
        name="example-decay",
        config_cls=DecayKernelConfig,
        target="audio_run_plugin_example.kernel:build",
        summary="real diagonal decaying modes (the plugin template's kernel)",
    )


@hookimpl
def register_backbones() -> Iterator[BackboneSpec]:
    yield BackboneSpec(
        name="example-causal-conv",
        config_cls=CausalConvConfig,
        target="audio_run_plugin_example.backbone:build",
        summary="gated dilated causal convolutions (the plugin template's backbone)",
    )


@hookimpl
def register_datasets() -> Iterator[DatasetSpec]:
    yield DatasetSpec(
        name="example-tones",
        config_cls=TonesConfig,
        target="audio_run_plugin_example.tones:build",
        summary="deterministic pure tones (the plugin template's dataset)",
    )
