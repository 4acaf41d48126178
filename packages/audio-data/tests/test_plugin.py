"""The datasets are registered and configurable; `audio-run data make` works end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from audio_core.cli import main as audio_run
from audio_core.manager import make_plugin_manager
from audio_core.registry import Registry
from audio_core.testing import check_spec
from audio_data.config import FolderConfig, SC09Config, SC09SynthConfig
from audio_data.datasets import AudioData

NAMES = {"sc09", "sc09-synth", "beethoven", "youtubemix", "folder"}


def registry() -> Registry:
    return Registry.from_plugin_manager(make_plugin_manager(environ={}))


def test_every_dataset_is_registered() -> None:
    datasets = registry().datasets
    assert set(datasets) >= NAMES
    for name in NAMES:
        check_spec(datasets[name])


def test_a_record_builds_its_dataset(make_sc09: object, tmp_path: Path) -> None:
    root = make_sc09()  # type: ignore[operator]
    spec = registry().datasets["sc09"]
    data = spec.load_target()(SC09Config(root=str(root)))
    assert isinstance(data, AudioData)
    assert len(data.split("val")) == 10


def test_make_writes_sc09_synth_and_keeps_an_existing_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "synth"
    argv = ["data", "make", "sc09-synth", "--root", str(root), "--per-class", "10", "--quiet"]
    assert audio_run(argv) == 0
    assert f"sc09-synth: 100 clips in {root}" in capsys.readouterr().out
    before = (root / "validation_list.txt").read_text()
    assert audio_run(argv) == 2
    assert "already exists; pass --force to replace it" in capsys.readouterr().err
    assert audio_run([*argv, "--force"]) == 0
    assert (root / "validation_list.txt").read_text() == before


def test_data_without_an_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert audio_run(["data"]) == 2
    assert "name an action: download or make" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SC09Config(quantization="alaw"), "'quantization' must be in"),
        (lambda: SC09Config(resample="maybe"), "'resample' must be in"),
        (lambda: FolderConfig(train_percentage=1.0), "'train_percentage' must be < 1.0"),
        (lambda: SC09SynthConfig(per_class=5), "'per_class' must be >= 10"),
    ],
)
def test_bad_configs_name_the_field(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_a_bad_root_exits_2_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dataset is built by the runner; here the builder's error reaches the user as one
    line (the runner issue wires `train`)."""
    from audio_data.datasets import build_sc09
    from audio_data.errors import DataError

    with pytest.raises(DataError) as info:
        build_sc09(SC09Config(root=str(tmp_path / "missing")))
    assert len(info.value.problems) == 1
    assert str(tmp_path / "missing") in info.value.problems[0]
