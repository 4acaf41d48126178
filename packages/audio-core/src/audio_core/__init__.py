"""audio-core: the plugin registry, run configuration and ``audio-run`` CLI of the SaShiMi toolkit.

Importing this package is cheap and never imports torch, so plugins may import it at module
level. The configuration machinery (cattrs) loads on first use of its names, so
``audio-run --help``, ``plugins`` and ``list`` do not pay for it.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .commands import CommandContext, CommandHandler, add_run_options
from .config import (
    BackboneChoice,
    Choice,
    DatasetChoice,
    GenerateConfig,
    KernelChoice,
    ModelChoice,
    OptimizerConfig,
    OutputConfig,
    RunConfig,
    SchedulerConfig,
    TrainConfig,
)
from .errors import (
    CheckpointError,
    ConfigError,
    PluginError,
    ProblemsError,
    RegistryError,
    TrainingError,
)
from .hookspecs import PROJECT_NAME, hookimpl
from .manager import (
    BUILTIN_NAME,
    ENTRY_POINT_GROUP,
    AudioPluginManager,
    PluginInfo,
    make_plugin_manager,
)
from .registry import Registry, UnknownNameError
from .specs import (
    ENGINES,
    KINDS,
    BackboneSpec,
    DatasetSpec,
    Engine,
    KernelSpec,
    Kind,
    MetricSpec,
    ModelSpec,
    PresetSpec,
    Spec,
    TargetImportError,
)

if TYPE_CHECKING:
    from .converter import ConfigValueError, make_converter
    from .resolve import parse_override, resolve_run_config, to_toml

_LAZY = {
    "ConfigValueError": "converter",
    "make_converter": "converter",
    "parse_override": "resolve",
    "resolve_run_config": "resolve",
    "to_toml": "resolve",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILTIN_NAME",
    "ENGINES",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "PROJECT_NAME",
    "AudioPluginManager",
    "BackboneChoice",
    "BackboneSpec",
    "CheckpointError",
    "Choice",
    "CommandContext",
    "CommandHandler",
    "ConfigError",
    "ConfigValueError",
    "DatasetChoice",
    "DatasetSpec",
    "Engine",
    "GenerateConfig",
    "KernelChoice",
    "KernelSpec",
    "Kind",
    "MetricSpec",
    "ModelChoice",
    "ModelSpec",
    "OptimizerConfig",
    "OutputConfig",
    "PluginError",
    "PluginInfo",
    "PresetSpec",
    "ProblemsError",
    "Registry",
    "RegistryError",
    "RunConfig",
    "SchedulerConfig",
    "Spec",
    "TargetImportError",
    "TrainConfig",
    "TrainingError",
    "UnknownNameError",
    "add_run_options",
    "hookimpl",
    "make_converter",
    "make_plugin_manager",
    "parse_override",
    "resolve_run_config",
    "to_toml",
]
