"""The ``audio_run`` hook specifications: everything a plugin can implement.

A plugin is a module (or any object) with functions marked ``@audio_core.hookimpl`` whose
names are among the hooks below. Distributions expose their plugin through an entry point in the
``audio_run`` group::

    [project.entry-points.audio_run]
    my-dist = "my_package.plugin"

The ``register_*`` hooks take no arguments and return an iterable of records; they are called
once per plugin when the registry is built, so they must be cheap and must not import heavy
modules (torch): put heavy code behind each record's ``target``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

import pluggy

from .specs import BackboneSpec, DatasetSpec, KernelSpec, MetricSpec, ModelSpec, PresetSpec

#: The pluggy project name, which is also the entry-point group.
PROJECT_NAME = "audio_run"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Mark a plugin's function as the implementation of the hook of the same name.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_kernels() -> Iterable[KernelSpec]:  # type: ignore[empty-body]
    """Return the SSM kernels this plugin provides, as :class:`~audio_core.KernelSpec` records.

    Kernels are the convolution kernels of state-space layers (``s4``, ``s4d``); a backbone's
    config names one, and ``audio-run list kernels`` lists them.
    """


@hookspec
def register_backbones() -> Iterable[BackboneSpec]:  # type: ignore[empty-body]
    """Return the sequence backbones this plugin provides, as :class:`~audio_core.BackboneSpec`.

    A backbone maps ``(batch, length, d_model)`` to ``(batch, length, d_model)``; models wrap
    one with an input embedding and an output head.
    """


@hookspec
def register_models() -> Iterable[ModelSpec]:  # type: ignore[empty-body]
    """Return the models this plugin provides, as :class:`~audio_core.ModelSpec` records.

    ``audio-run --model NAME`` and the ``[model]`` section of a run config choose among them.
    """


@hookspec
def register_datasets() -> Iterable[DatasetSpec]:  # type: ignore[empty-body]
    """Return the datasets this plugin provides, as :class:`~audio_core.DatasetSpec` records.

    ``audio-run --dataset NAME`` and the ``[dataset]`` section of a run config choose among them.
    """


@hookspec
def register_metrics() -> Iterable[MetricSpec]:  # type: ignore[empty-body]
    """Return the evaluation metrics this plugin provides, as :class:`~audio_core.MetricSpec`."""


@hookspec
def register_presets() -> Iterable[PresetSpec]:  # type: ignore[empty-body]
    """Return named run configurations, as :class:`~audio_core.PresetSpec` records.

    ``audio-run --preset NAME`` starts from one (the reference's experiments, e.g.
    ``sashimi-sc09``); ``audio-run list presets`` lists them.
    """


@hookspec
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add subcommands to ``audio-run`` (e.g. audio-data's ``audio-run data``).

    Call ``subparsers.add_parser(name, help=...)`` and give the new parser a handler with
    ``parser.set_defaults(handler=fn)``; ``fn(args, context)`` receives the parsed
    ``argparse.Namespace`` and an :class:`~audio_core.CommandContext` and returns the exit
    status (``None`` means 0). Import heavy modules inside the handler, not here:
    ``audio-run --help`` calls this hook.
    """
