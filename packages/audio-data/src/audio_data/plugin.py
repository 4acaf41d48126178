"""The ``sashimi-audio-data`` plugin, loaded through its ``audio_run`` entry point.

It registers the ``sc09``, ``sc09-synth``, ``beethoven``, ``youtubemix`` and ``folder``
datasets and the ``audio-run data`` command. Only torch-free modules are imported here.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from audio_core import DatasetSpec, hookimpl

from . import commands
from .config import BeethovenConfig, FolderConfig, SC09Config, SC09SynthConfig, YouTubeMixConfig


@hookimpl
def register_datasets() -> Iterator[DatasetSpec]:
    yield DatasetSpec(
        name="sc09",
        config_cls=SC09Config,
        target="audio_data.datasets:build_sc09",
        summary="SC09 spoken digits zero..nine, 1 s at 16 kHz (audio-run data download sc09)",
    )
    yield DatasetSpec(
        name="sc09-synth",
        config_cls=SC09SynthConfig,
        target="audio_data.datasets:build_sc09_synth",
        summary="built-in synthetic speech-like digits in the SC09 layout (written on first use)",
    )
    yield DatasetSpec(
        name="beethoven",
        config_cls=BeethovenConfig,
        target="audio_data.datasets:build_beethoven",
        summary="Beethoven piano sonatas, 8-bit linear, 128,000-sample windows",
    )
    yield DatasetSpec(
        name="youtubemix",
        config_cls=YouTubeMixConfig,
        target="audio_data.datasets:build_youtubemix",
        summary="YouTubeMix piano, 8-bit mu-law, 131,072-sample windows",
    )
    yield DatasetSpec(
        name="folder",
        config_cls=FolderConfig,
        target="audio_data.datasets:build_folder",
        summary="any folder of .wav files, split by file and cut into windows",
    )


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.register(subparsers)
