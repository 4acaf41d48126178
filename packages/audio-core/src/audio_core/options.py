"""The command-line options shared by every command that takes a run configuration."""

from __future__ import annotations

import argparse
from pathlib import Path

RUN_HELP = """\
Configuration, lowest precedence first: the defaults; --preset NAME; each --config FILE in
order; --model and --dataset; each KEY=VALUE override in order. Values are read as TOML
(128, 4e-3, true, [4, 4], "quoted text") and otherwise as plain text (data/sc09)."""


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--config``, ``--model``, ``--dataset`` and ``KEY=VALUE`` overrides to ``parser``.

    Commands of other packages that need a run config (``evaluate``, ``test``) call this and
    then :meth:`audio_core.CommandContext.resolve_config`.
    """
    group = parser.add_argument_group("configuration", RUN_HELP)
    group.add_argument(
        "--preset",
        metavar="NAME",
        help="start from a named configuration, e.g. one of the reference's experiments "
        "(sashimi-sc09; `audio-run list presets` lists them)",
    )
    group.add_argument(
        "--config",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a TOML run config (repeatable; later files override earlier ones)",
    )
    group.add_argument("--model", metavar="NAME", help="the model (sets model.name)")
    group.add_argument("--dataset", metavar="NAME", help="the dataset (sets dataset.name)")
    group.add_argument(
        "overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. model.d_model=128 train.batch_size=8",
    )
