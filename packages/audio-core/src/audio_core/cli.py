"""The ``audio-run`` command line.

Parsing happens in two stages: ``--plugin`` / ``--no-plugins`` are read first (wherever they
appear) so the plugin manager can be built; then every plugin's ``register_commands`` adds its
subcommands and the rest of the line is parsed. With no subcommand, ``train`` is implied:
``audio-run --model sashimi --dataset sc09`` trains.

Exit status: 0 on success, 2 for usage, configuration and plugin errors (printed one per line
as ``audio-run: error: ...``, without a traceback), 1 for an operating-system error (a full
disk, a read-only folder: one line naming the path), otherwise what the command returns.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._suggest import did_you_mean
from .commands import CommandContext
from .errors import PluginError, ProblemsError
from .manager import ENV_DISABLE, ENV_PLUGINS, make_plugin_manager
from .specs import TargetImportError

PROG = "audio-run"
DEFAULT_COMMAND = "train"

_DESCRIPTION = """\
Train, sample and evaluate raw-audio generative models (SaShiMi, WaveNet, SampleRNN, ...).
Models, datasets, kernels and metrics come from plugins: installed distributions that declare
an `audio_run` entry point, plus modules named with --plugin.

Without a command, audio-run trains:
  audio-run --model sashimi --dataset sc09 [--config FILE] [KEY=VALUE ...]
"""

_EPILOG = f"""\
environment:
  {ENV_PLUGINS}=a,b         also register these plugin modules
  {ENV_DISABLE}=x,y  never register these plugins (by plugin name)

`audio-run COMMAND --help` explains each command."""


def _add_plugin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help=f"also register the plugin module MODULE (repeatable; like {ENV_PLUGINS})",
    )
    parser.add_argument(
        "--no-plugins",
        action="store_true",
        help="do not load installed plugins' entry points (--plugin modules still load)",
    )


def build_parser(
    ctx: CommandContext,
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The full parser, with every plugin's subcommands; records who added which in ``ctx``.

    Raises:
        PluginError: a plugin's ``register_commands`` failed or added a clashing command.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    _add_plugin_options(parser)
    parser.add_argument("--version", action="version", version=f"%(prog)s {ctx.core_version}")
    subparsers = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    pm = ctx.plugin_manager
    problems = []
    for impl in pm.hook.register_commands.get_hookimpls():  # registration order: core first
        info = pm.info(impl.plugin_name)
        before = set(subparsers.choices)
        try:
            impl.function(subparsers)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 -- a plugin's bug: name it
            problems.append(
                f"register_commands() of plugin {info.name!r} ({info.label}) raised "
                f"{type(exc).__name__}: {exc}"
            )
            continue
        ctx.commands[info.name] = sorted(set(subparsers.choices) - before)
    if problems:
        raise PluginError(problems)
    commands = dict(subparsers.choices)
    for name, sub in commands.items():
        if sub.get_default("handler") is None:
            owner = next((p for p, names in ctx.commands.items() if name in names), "?")
            problem = f"command {name!r} of plugin {owner!r} sets no handler: call "
            raise PluginError([problem + "set_defaults(handler=...) on its parser"])
    return parser, commands


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        option
        for action in parser._actions
        if action.option_strings and action.nargs != 0
        for option in action.option_strings
    }


def _with_command(
    parser: argparse.ArgumentParser, commands: dict[str, argparse.ArgumentParser], tokens: list[str]
) -> list[str]:
    """``tokens`` with ``train`` put in front when they name no command (the bare form)."""
    if tokens and tokens[0] in {"-h", "--help", "--version"}:
        return tokens
    value_options = _value_options(commands[DEFAULT_COMMAND])
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--":
            break
        if token.startswith("-"):
            index += 2 if token in value_options else 1
            continue
        if token in commands:
            return tokens
        if index == 0 and "=" not in token:
            parser.error(
                f"unknown command {token!r}{did_you_mean(token, commands)} "
                f"(commands: {', '.join(commands)})"
            )
        break
    return [DEFAULT_COMMAND, *tokens]


def _reject_extras(sub: argparse.ArgumentParser, extras: list[str]) -> None:
    options = list(sub._option_string_actions)
    bad = ", ".join(f"{e!r}{did_you_mean(e.split('=')[0], options)}" for e in extras)
    sub.error(f"unrecognized arguments: {bad}")


def _worker_line(problem: str) -> str:
    """A problem raised in a DataLoader worker arrives wrapped in the worker's traceback
    ("Caught DataError in DataLoader worker process 0. Original Traceback ..."): keep the
    original message, its last line."""
    if "Original Traceback (most recent call last)" not in problem:
        return problem
    last = [line for line in problem.splitlines() if line.strip()][-1]
    return last.split(": ", 1)[1] if ": " in last else last


def _say(line: str) -> None:
    """One ``audio-run: error:`` line; paths that are not valid text (undecodable file names)
    are shown with escapes instead of failing to print."""
    text = f"{PROG}: error: {line}"
    sys.stderr.write(text.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")


def _fail(problems: Sequence[str], status: int = 2) -> int:
    for line in problems:
        _say(_worker_line(line))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``audio-run`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    early = argparse.ArgumentParser(prog=PROG, add_help=False, allow_abbrev=False)
    _add_plugin_options(early)
    plugin_args, rest = early.parse_known_args(tokens)
    try:
        pm = make_plugin_manager(
            plugins=plugin_args.plugin, load_entry_points=not plugin_args.no_plugins
        )
        ctx = CommandContext(pm)
        parser, commands = build_parser(ctx)
    except PluginError as exc:
        return _fail(exc.problems)

    args, extras = parser.parse_known_args(_with_command(parser, commands, rest))
    sub = commands[args.command]
    if extras:  # KEY=VALUE after an option lands here; anything else is a usage error
        bad = [e for e in extras if e.startswith("-") or "=" not in e]
        if bad or not hasattr(args, "overrides"):
            _reject_extras(sub, bad or extras)
        args.overrides = [*args.overrides, *extras]
    try:
        status = args.handler(args, ctx)
    except ProblemsError as exc:  # configuration, registry, plugin and data problems
        return _fail(exc.problems)
    except TargetImportError as exc:  # a record names code that is not there
        return _fail([str(exc)])
    except OSError as exc:  # a full disk, a read-only folder, a permission: one line, exit 1
        from .io import describe_os_error

        return _fail([describe_os_error(exc)], status=1)
    return 0 if status is None else int(status)
