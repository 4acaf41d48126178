"""Every package and the example plugin installed together, driven through ``audio-run``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from audio_core import Registry, make_plugin_manager
from audio_core.testing import check_spec, installed_plugin_dists, modules_imported_by_cli

ROOT = Path(__file__).parents[2]
Run = Callable[..., subprocess.CompletedProcess[str]]
OURS = {
    "sashimi-audio-core": "builtin",
    "sashimi-ssm-kernels": "entry point",
    "sashimi-audio-models": "entry point",
    "sashimi-audio-data": "entry point",
    "sashimi-audio-metrics": "entry point",
}
EXAMPLE = "audio-run-plugin-example"


def plugins_json(audio_run: Run, *args: str, env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    result = audio_run(*args, "plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report: dict = json.loads(result.stdout)  # type: ignore[type-arg]
    return report


def test_plugins_json_lists_the_five_distributions_and_the_example(audio_run: Run) -> None:
    report = plugins_json(audio_run)
    by_name = {p["name"]: p for p in report["plugins"]}
    assert set(by_name) == {*OURS, EXAMPLE}
    for name, source in OURS.items():
        assert by_name[name]["distribution"] == name
        assert by_name[name]["version"] == "0.2.0"
        assert by_name[name]["source"] == source
        assert set(by_name[name]["provides"]) == {
            "kernels", "backbones", "models", "datasets", "metrics", "presets", "commands",
        }  # fmt: skip
    example = by_name[EXAMPLE]
    assert (example["distribution"], example["version"], example["source"]) == (
        EXAMPLE,
        "0.2.0",
        "entry point",
    )
    assert example["hooks"] == ["register_backbones", "register_datasets", "register_kernels"]
    assert example["provides"]["kernels"] == ["example-decay"]
    assert example["provides"]["backbones"] == ["example-causal-conv"]
    assert example["provides"]["datasets"] == ["example-tones"]
    assert report["disabled"] == []


def test_mos_tools_is_installed_but_is_no_plugin() -> None:
    from importlib.metadata import version

    assert version("sashimi-mos-tools") == "0.2.0"
    assert "sashimi-mos-tools" not in installed_plugin_dists()


def test_list_backbones_shows_the_example(audio_run: Run) -> None:
    result = audio_run("list", "backbones")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "backbones:"
    assert result.stdout.splitlines()[1].split(None, 2)[:2] == [
        "example-causal-conv",
        f"{EXAMPLE}==0.2.0",
    ]


def test_disabling_the_example_hides_it(audio_run: Run) -> None:
    env = {"AUDIO_RUN_DISABLE_PLUGINS": EXAMPLE}
    report = plugins_json(audio_run, env=env)
    assert {p["name"] for p in report["plugins"]} == set(OURS)
    assert report["disabled"] == [EXAMPLE]
    result = audio_run("list", "backbones", env=env)
    assert "example-causal-conv" not in result.stdout
    assert "sashimi-audio-models==" in result.stdout  # the other plugins still provide theirs


def test_no_plugins_leaves_only_the_builtin(audio_run: Run) -> None:
    report = plugins_json(audio_run, "--no-plugins")
    assert [p["name"] for p in report["plugins"]] == ["sashimi-audio-core"]


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["plugins"], ["plugins", "--json"], ["list"], ["config", "--help"]],
)
def test_help_and_listing_never_import_torch_with_everything_installed(argv: list[str]) -> None:
    import importlib.util

    assert importlib.util.find_spec("torch") is not None  # the check below can fail here
    status, modules = modules_imported_by_cli(argv)
    assert status == 0
    assert not {m for m in modules if m == "torch" or m.startswith("torch.")}


def test_every_registered_record_is_valid_and_round_trips() -> None:
    registry = Registry.from_plugin_manager(make_plugin_manager())
    specs = [spec for kind in ("kernels", "backbones", "models", "datasets", "metrics", "presets")
             for spec in registry.specs(kind).values()]  # fmt: skip
    assert specs, "nothing registered: the example plugin at least should be"
    for spec in specs:
        check_spec(spec, registry)


MODEL_PLUGIN = """
from attrs import field, frozen
from attrs import validators as v
from audio_core import ModelSpec, hookimpl

@frozen(kw_only=True)
class LocalModel:
    backbone: str = "example-causal-conv"
    d_model: int = field(default=16, validator=v.gt(0))

@hookimpl
def register_models():
    return [ModelSpec(name="local", config_cls=LocalModel, target="local_model:build",
                      summary="a model from a --plugin module")]
"""


def test_config_end_to_end_with_a_plugin_model_and_the_example_dataset(
    audio_run: Run, tmp_path: Path
) -> None:
    (tmp_path / "local_model.py").write_text(MODEL_PLUGIN)
    env = {"PYTHONPATH": str(tmp_path)}
    base = ["--plugin", "local_model"]
    result = audio_run(
        *base, "config", "--model", "local", "--dataset", "example-tones",
        "dataset.max_freq=440", "train.batch_size=4", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    saved = tmp_path / "run.toml"
    saved.write_text(result.stdout)
    again = audio_run(*base, "config", "--config", str(saved), env=env)
    assert (again.returncode, again.stdout) == (0, result.stdout)
    assert 'name = "example-tones"' in result.stdout
    assert "max_freq = 440.0" in result.stdout

    bad = audio_run(*base, "--config", str(saved), "dataset.max_frq=1", "model.d_model=0", env=env)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.splitlines() == [
        "audio-run: error: 'd_model' must be > 0: 0 @ $.model.d_model "
        "(from override 'model.d_model=0')",
        "audio-run: error: extra fields found (max_frq) @ $.dataset — did you mean 'max_freq'? "
        "(from override 'dataset.max_frq=1')",
    ]


def test_the_pinned_torch_pair_is_what_got_installed() -> None:
    from importlib.metadata import version

    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints" / "ci.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    for name in ("torch", "torchaudio"):
        assert version(name).split("+")[0] == pins[name]


def test_a_sashimi_run_is_configured_from_the_command_line(audio_run: Run) -> None:
    result = audio_run(
        "config",
        "--model",
        "sashimi",
        "--dataset",
        "example-tones",
        "model.kernel.name=s4d",
        "model.kernel.init=diag-lin",
        "model.pool=[2, 2]",
    )
    assert result.returncode == 0, result.stderr
    assert '[model.kernel]\nname = "s4d"' in result.stdout
    assert 'init = "diag-lin"' in result.stdout
    assert "pool = [\n    2,\n    2,\n]" in result.stdout
    bad = audio_run(
        "config", "--model", "sashimi", "--dataset", "example-tones", "model.kernel.init=legt"
    )
    assert bad.returncode == 2
    assert "init 'legt' needs rank >= 2" in bad.stderr
    old = audio_run(
        "config", "--model", "sashimi", "--dataset", "example-tones", "model.kernel=s4d"
    )
    assert old.returncode == 2
    assert "a kernel is a table, write kernel.name = 's4d'" in old.stderr
