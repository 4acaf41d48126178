"""audio-core's built-in plugin.

Registered before anything else under the name ``sashimi-audio-core`` (also its entry-point
name, so the entry point is not loaded twice), through the same hooks a third-party plugin
implements. It adds audio-core's own subcommands.
"""

from __future__ import annotations

import argparse

from .core_commands import register_core_commands
from .hookspecs import hookimpl


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``train``, ``generate``, ``config``, ``list`` and ``plugins``."""
    register_core_commands(subparsers)
