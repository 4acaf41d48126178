"""The ``audio-run`` command line, driven through ``main(argv)`` and in subprocesses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from audio_core.cli import main
from audio_core.testing import modules_imported_by_cli

HELLO = """
def hello(args, ctx):
    ctx.print(f"hello {args.who} ({len(ctx.registry.models)} models)")
    return args.status

@hookimpl
def register_commands(subparsers):
    parser = subparsers.add_parser("hello", help="say hello")
    parser.add_argument("who")
    parser.add_argument("--status", type=int, default=0)
    parser.set_defaults(handler=hello)
"""


@pytest.fixture
def hello(write_module) -> list[str]:
    write_module("hello_cli", HELLO)
    return ["--plugin", "hello_cli"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse's --help, --version and usage errors
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def test_help_lists_core_and_plugin_commands(capsys, hello) -> None:
    status, out, _ = run(capsys, *hello, "--help")
    assert status == 0
    assert out.startswith("usage: audio-run ")
    for command in ("train", "config", "list", "plugins", "hello"):
        assert f"\n    {command} " in out
    assert "AUDIO_RUN_DISABLE_PLUGINS" in out


@pytest.mark.parametrize("command", ["train", "config", "list", "plugins"])
def test_every_command_explains_itself(capsys, command: str) -> None:
    status, out, _ = run(capsys, command, "--help")
    assert status == 0
    assert out.startswith(f"usage: audio-run {command} ")


def test_version(capsys) -> None:
    status, out, _ = run(capsys, "--version")
    assert (status, out.strip()) == (0, "audio-run 0.2.0")


def test_the_bare_form_trains_and_names_a_missing_target(
    capsys, toy, tmp_path, monkeypatch
) -> None:
    """The toy records name code that does not exist: training stops with one line, exit 2."""
    monkeypatch.chdir(tmp_path)
    for argv in (
        [*toy, "--model", "toy", "--dataset", "tones", "output.name=a"],
        [*toy, "model.d_model=8", "--model", "t", "--dataset", "tones", "output.name=b"],
        [*toy, "train", "--model", "toy", "--dataset", "tones", "train.batch_size=2",
         "output.name=c", "--quiet"],
    ):  # fmt: skip
        status, out, err = run(capsys, *argv)
        assert status == 2
        assert out == ""
        assert err.splitlines() == [
            "audio-run: error: cannot import target 'toy_cli:data' of dataset 'tones': "
            "toy_cli has no attribute 'data'"
        ]


def test_a_bad_config_prints_one_line_per_problem_and_exits_2(capsys, toy) -> None:
    status, out, err = run(
        capsys, *toy, "--model", "toy", "--dataset", "tones", "model.d_modle=3", "train.seed=-1"
    )
    assert status == 2
    assert out == ""
    assert err.splitlines() == [
        "audio-run: error: extra fields found (d_modle) @ $.model — did you mean 'd_model'? "
        "(from override 'model.d_modle=3')",
        "audio-run: error: 'seed' must be >= 0: -1 @ $.train.seed (from override 'train.seed=-1')",
    ]


def test_an_unknown_model_lists_the_installed_ones(capsys, toy) -> None:
    status, _, err = run(capsys, *toy, "config", "--model", "tyo", "--dataset", "tones")
    assert status == 2
    assert err == (
        "audio-run: error: unknown model 'tyo' — did you mean 'toy'? (installed: toy) "
        "@ $.model.name (from --model)\n"
    )


def test_config_prints_toml_that_reads_back_identically(capsys, toy, tmp_path: Path) -> None:
    status, first, _ = run(
        capsys, *toy, "config", "--model", "toy", "--dataset", "tones", "model.pool=[2, 2]"
    )
    assert status == 0
    assert first.startswith("# Resolved by audio-run (sashimi-audio-core 0.2.0)")
    assert '[model]\nname = "toy"\nd_model = 64\npool = [\n    2,\n    2,\n]' in first
    saved = tmp_path / "run.toml"
    saved.write_text(first)
    status, second, _ = run(capsys, *toy, "config", "--config", str(saved))
    assert (status, second) == (0, first)


def test_list_one_kind_as_text_and_json(capsys, toy) -> None:
    status, out, _ = run(capsys, *toy, "list", "models")
    assert status == 0
    assert out.splitlines() == ["models:", "  toy  module toy_cli  a toy model (aliases: t)"]
    status, out, _ = run(capsys, *toy, "list", "datasets", "--json")
    assert json.loads(out) == {
        "datasets": [
            {
                "name": "tones",
                "aliases": [],
                "summary": "sine tones",
                "target": "toy_cli:data",
                "config": "toy_cli.ToyDataConfig",
                "plugin": "toy_cli",
                "distribution": None,
                "version": None,
            }
        ]
    }


def test_list_everything_shows_empty_kinds(capsys, toy) -> None:
    status, out, _ = run(capsys, *toy, "list")
    assert status == 0
    assert "kernels:\n  (none installed)\n" in out
    assert "metrics:\n  (none installed)" in out


def test_list_refuses_an_unknown_kind(capsys) -> None:
    status, _, err = run(capsys, "list", "model")
    assert status == 2
    assert "invalid choice: 'model'" in err


def test_plugins_json_describes_each_plugin(capsys, toy, hello) -> None:
    status, out, _ = run(capsys, *toy, *hello, "--no-plugins", "plugins", "--json")
    assert status == 0
    report = json.loads(out)
    assert report["disabled"] == []
    by_name = {p["name"]: p for p in report["plugins"]}
    assert list(by_name) == ["hello_cli", "sashimi-audio-core", "toy_cli"]
    core = by_name["sashimi-audio-core"]
    assert (core["distribution"], core["version"], core["source"]) == (
        "sashimi-audio-core",
        "0.2.0",
        "builtin",
    )
    commands = ["config", "generate", "list", "plugins", "test", "train"]
    assert core["provides"]["commands"] == commands
    assert by_name["toy_cli"]["hooks"] == ["register_datasets", "register_models"]
    assert by_name["toy_cli"]["provides"] == {
        "kernels": [],
        "backbones": [],
        "models": ["toy"],
        "datasets": ["tones"],
        "metrics": [],
        "presets": [],
        "commands": [],
    }
    assert by_name["hello_cli"]["provides"]["commands"] == ["hello"]


def test_plugins_table(capsys, toy) -> None:
    status, out, _ = run(capsys, *toy, "plugins")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["PLUGIN", "DISTRIBUTION", "SOURCE", "PROVIDES"]
    assert any(
        line.split(None, 3)
        == ["toy_cli", "module", "toy_cli", "--plugin  models: toy; datasets: tones"]
        for line in lines
    )


def test_a_plugin_command_runs_with_the_context_and_returns_its_status(capsys, toy, hello) -> None:
    status, out, _ = run(capsys, *toy, *hello, "hello", "world", "--status", "3")
    assert (status, out) == (3, "hello world (1 models)\n")


def test_unknown_commands_and_options_are_usage_errors(capsys) -> None:
    status, _, err = run(capsys, "trian")
    assert status == 2
    assert err.splitlines()[-1] == (
        "audio-run: error: unknown command 'trian' — did you mean 'train'? "
        "(commands: train, generate, test, config, list, plugins)"
    )
    status, _, err = run(capsys, "config", "--modle", "toy")
    assert status == 2
    assert err.splitlines()[-1] == (
        "audio-run config: error: unrecognized arguments: '--modle' — did you mean '--model'?"
    )
    status, _, err = run(capsys, "plugins", "model.x=1")
    assert status == 2
    assert err.splitlines()[-1] == "audio-run plugins: error: unrecognized arguments: 'model.x=1'"


def test_a_positional_that_is_not_an_override(capsys, toy) -> None:
    status, _, err = run(capsys, *toy, "--model", "toy", "--dataset", "tones", "sashimi")
    assert status == 2
    assert err == (
        "audio-run: error: override 'sashimi' must have the form KEY=VALUE "
        "(e.g. model.d_model=128)\n"
    )


def test_a_missing_plugin_module_is_one_line_and_exit_2(capsys) -> None:
    status, out, err = run(capsys, "--plugin", "nowhere_xyz", "plugins")
    assert (status, out) == (2, "")
    assert err == (
        "audio-run: error: --plugin 'nowhere_xyz': cannot import it: ModuleNotFoundError: "
        "No module named 'nowhere_xyz' (is it installed or on PYTHONPATH?)\n"
    )


def test_duplicate_names_are_reported_by_every_command_that_needs_the_registry(
    capsys, write_module, toy, toy_body
) -> None:
    write_module("toy_twin", toy_body)
    status, _, err = run(capsys, *toy, "--plugin", "toy_twin", "list")
    assert status == 2
    assert err.splitlines() == [
        "audio-run: error: dataset name 'tones' is provided 2 times, by module toy_cli, module "
        "toy_twin; uninstall one or skip a plugin with AUDIO_RUN_DISABLE_PLUGINS=<plugin name>",
        "audio-run: error: model name 't' is provided 2 times, by module toy_cli, module "
        "toy_twin; uninstall one or skip a plugin with AUDIO_RUN_DISABLE_PLUGINS=<plugin name>",
        "audio-run: error: model name 'toy' is provided 2 times, by module toy_cli, module "
        "toy_twin; uninstall one or skip a plugin with AUDIO_RUN_DISABLE_PLUGINS=<plugin name>",
    ]


def test_a_command_clashing_with_a_core_command_names_the_plugin(capsys, write_module) -> None:
    write_module(
        "clash_cli",
        """
@hookimpl
def register_commands(subparsers):
    subparsers.add_parser("config").set_defaults(handler=lambda args, ctx: 0)
""",
    )
    status, _, err = run(capsys, "--plugin", "clash_cli", "plugins")
    assert status == 2
    assert err == (
        "audio-run: error: register_commands() of plugin 'clash_cli' (module clash_cli) raised "
        "ArgumentError: argument COMMAND: conflicting subparser: config\n"
    )


def test_a_command_without_handler_is_refused(capsys, write_module) -> None:
    write_module(
        "lazy_cli",
        """
@hookimpl
def register_commands(subparsers):
    subparsers.add_parser("idle")
""",
    )
    status, _, err = run(capsys, "--plugin", "lazy_cli", "plugins")
    assert status == 2
    assert err == (
        "audio-run: error: command 'idle' of plugin 'lazy_cli' sets no handler: call "
        "set_defaults(handler=...) on its parser\n"
    )


@pytest.fixture
def fake_torch(tmp_path: Path) -> dict[str, str]:
    """An environment whose ``import torch`` would succeed, so importing it is observable."""
    folder = tmp_path / "fake-torch"
    (folder / "torch").mkdir(parents=True)
    (folder / "torch" / "__init__.py").write_text("__version__ = 'fake'\n")
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["plugins"], ["plugins", "--json"], ["list"], ["train", "--help"]],
)
def test_help_and_listing_never_import_torch(fake_torch: dict[str, str], argv: list[str]) -> None:
    status, modules = modules_imported_by_cli(argv, env=fake_torch)
    assert status == 0
    assert "torch" not in modules
    assert "cattrs" not in modules  # the config machinery loads only for config and train


def test_config_resolution_loads_the_converter_on_demand(toy: list[str], site: Path) -> None:
    status, modules = modules_imported_by_cli(
        [*toy, "config", "--model", "toy", "--dataset", "tones"],
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert status == 0
    assert "cattrs" in modules


def test_the_import_probe_does_see_torch_when_it_is_imported(
    fake_torch: dict[str, str], tmp_path: Path
) -> None:
    plugin = tmp_path / "fake-torch" / "greedy_plugin.py"
    plugin.write_text("import torch\n")
    status, modules = modules_imported_by_cli(["--plugin", "greedy_plugin", "--help"], fake_torch)
    assert status == 0
    assert "torch" in modules
