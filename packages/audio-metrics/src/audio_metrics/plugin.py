"""The ``sashimi-audio-metrics`` plugin, loaded through its ``audio_run`` entry point.

It registers the metrics ``fid``, ``is``, ``mis``, ``am`` and ``ndb`` (``register_metrics``) and
the ``audio-run classifier`` and ``audio-run evaluate`` commands (``register_commands``). Only
torch-free modules are imported here.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from audio_core import MetricSpec, hookimpl

from . import commands
from .config import AMConfig, FIDConfig, ISConfig, MISConfig, NDBConfig


@hookimpl
def register_metrics() -> Iterator[MetricSpec]:
    yield MetricSpec(
        name="fid",
        config_cls=FIDConfig,
        target="audio_metrics.suite:build_fid",
        summary="Frechet distance of classifier activations to the training set's (lower)",
    )
    yield MetricSpec(
        name="is",
        config_cls=ISConfig,
        target="audio_metrics.suite:build_is",
        summary="Inception score exp(E KL(p(y|x) || p(y))) (higher)",
    )
    yield MetricSpec(
        name="mis",
        config_cls=MISConfig,
        target="audio_metrics.suite:build_mis",
        summary="modified Inception score exp(E KL(p(y|x) || p(y|x'))) (higher)",
    )
    yield MetricSpec(
        name="am",
        config_cls=AMConfig,
        target="audio_metrics.suite:build_am",
        summary="AM score KL(train prior || p(y)) + E H(p(y|x)) (lower)",
    )
    yield MetricSpec(
        name="ndb",
        config_cls=NDBConfig,
        target="audio_metrics.suite:build_ndb",
        summary="number of statistically different k-means bins, NDB/K (lower)",
    )


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.register(subparsers)
