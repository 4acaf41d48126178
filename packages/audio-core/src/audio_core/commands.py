"""What every ``audio-run`` subcommand handler receives: :class:`CommandContext`.

audio-core's own commands (``train``, ``generate``, ``config``, ``list``, ``plugins``) live in
:mod:`audio_core.core_commands` and are added by the built-in plugin through the same
``register_commands`` hook other packages use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from attrs import define, field

from .config import RunConfig
from .errors import ConfigError
from .manager import BUILTIN_NAME, AudioPluginManager
from .options import add_run_options
from .registry import Registry, UnknownNameError
from .specs import PresetSpec

#: A subcommand's handler: parsed arguments and context in, exit status out (None means 0).
CommandHandler = Callable[[argparse.Namespace, "CommandContext"], int | None]

__all__ = ["CommandContext", "CommandHandler", "add_run_options"]


@define
class CommandContext:
    """What a subcommand handler receives besides its parsed arguments.

    Attributes:
        plugin_manager: the plugin manager built for this invocation.
        commands: the subcommands each plugin added, by plugin name.
        stdout: where results go (the handlers print nothing else there).
    """

    plugin_manager: AudioPluginManager
    commands: dict[str, list[str]] = field(factory=dict)
    stdout: TextIO = field(factory=lambda: sys.stdout)
    _registry: Registry | None = field(default=None, init=False)

    @property
    def registry(self) -> Registry:
        """The registry of every plugin's records, built on first use."""
        if self._registry is None:
            self._registry = Registry.from_plugin_manager(self.plugin_manager)
        return self._registry

    @property
    def core_version(self) -> str:
        """sashimi-audio-core's version (``"unknown"`` when run from an uninstalled tree)."""
        return self.plugin_manager.info(BUILTIN_NAME).version or "unknown"

    def resolve_config(
        self,
        args: argparse.Namespace,
        *,
        base: Mapping[str, Any] | None = None,
        base_origin: str = "the saved config",
    ) -> RunConfig:
        """The run config from the options :func:`add_run_options` added to ``args``, on top
        of ``base`` (plain data such as a checkpoint's saved config) or of ``--preset``.

        Raises:
            ConfigError: one line per problem (an unknown preset included).
        """
        from .resolve import resolve_run_config  # cattrs: only commands that need a config

        preset = getattr(args, "preset", None)
        if preset is not None:
            if base is not None:
                raise ConfigError([f"--preset {preset}: this command starts from {base_origin}"])
            try:
                spec = self.registry.get("presets", preset)
            except UnknownNameError as exc:
                raise ConfigError([f"--preset: {exc}"]) from None
            assert isinstance(spec, PresetSpec), f"{spec!r} is not a preset"
            base, base_origin = spec.load(), f"--preset {spec.name}"
        files: list[Path] = list(getattr(args, "config", None) or [])
        return resolve_run_config(
            self.registry,
            base=base,
            base_origin=base_origin,
            files=files,
            model=getattr(args, "model", None),
            dataset=getattr(args, "dataset", None),
            overrides=list(getattr(args, "overrides", None) or []),
        )

    def print(self, *lines: str) -> None:
        """Write lines to ``stdout``."""
        for line in lines:
            print(line, file=self.stdout)
