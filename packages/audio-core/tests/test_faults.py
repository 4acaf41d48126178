"""Bad input and faults get one clear line and lose nothing: audio-core's mechanisms.

Each test is one class of the attack in the reliability issue: run-folder locks, torn logs and
non-finite numbers in JSON, optimizer groups that survive a new learning rate, operating-system
errors at the command boundary, folders that ``--force`` may and may not replace, the umask,
broken plugins, checkpoints made by hand, and settings that contradict each other.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from audio_core.cli import _worker_line, main
from audio_core.errors import CheckpointError, ConfigError, PluginError, TrainingError
from audio_core.io import (
    atomic_write,
    check_replaceable,
    describe_os_error,
    dumps_json,
    replacing_dir,
    write_text,
)
from audio_core.manager import make_plugin_manager
from audio_core.optim import OptimHint, param_groups
from audio_core.runner.checkpoint import load_checkpoint, save_checkpoint
from audio_core.runner.lock import RunLock
from audio_core.runner.logs import MetricsLog, loss_curve_svg


# -- run folders ---------------------------------------------------------------------------
def test_a_second_process_cannot_take_a_run_folder_and_is_told_who_has_it(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from audio_core.runner.lock import "
            "RunLock; RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); "
            "time.sleep(60)",
            str(run),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TrainingError) as info:
            RunLock(run).acquire()
        assert info.value.problems == (
            f"{run}: in use by another audio-run (PID {holder.pid}); wait for it to finish or "
            "choose another output.name",
        )
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    lock = RunLock(run)  # the holder is gone: the lock is free again (no stale-file problem)
    lock.acquire()
    lock.release()


def test_a_lock_that_created_its_folder_removes_it_when_the_run_cannot_start(
    tmp_path: Path,
) -> None:
    lock = RunLock(tmp_path / "runs" / "new")  # output.root made too
    lock.acquire()
    lock.discard()
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "config.toml").write_text("")
    lock = RunLock(tmp_path / "kept")
    lock.acquire()
    lock.discard()
    assert (tmp_path / "kept" / "config.toml").exists()


# -- logs and JSON -------------------------------------------------------------------------
def test_a_torn_last_line_is_skipped_and_dropped(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in (1, 2, 3):
        log.write({"step": step, "train_bits": 5.0})
    with log.path.open("a") as handle:
        handle.write('{"step": 4, "train_bi')  # kill -9 in the middle of a write
    assert [r["step"] for r in log.read()] == [1, 2, 3]
    log.truncate_after(3)
    assert log.path.read_text().count("\n") == 3
    assert json.loads(log.path.read_text().splitlines()[-1])["step"] == 3


def test_a_damaged_line_before_the_last_names_the_file(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(TrainingError, match=r"metrics.jsonl:2: not a JSON line; repair or del"):
        log.read()


def test_non_finite_numbers_are_written_as_null(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write({"step": 1, "train_bits": math.nan, "lr": math.inf, "nested": [1.0, -math.inf]})
    text = log.path.read_text()
    assert "NaN" not in text and "Infinity" not in text  # noqa: PT018
    assert json.loads(text) == {"step": 1, "train_bits": None, "lr": None, "nested": [1.0, None]}
    assert dumps_json({"a": math.nan}) == '{"a": null}'
    assert loss_curve_svg(log.read()).startswith("<svg")


# -- optimizer groups ----------------------------------------------------------------------
class Hinted(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(2))
        self.b = torch.nn.Parameter(torch.zeros(2))

    def optim_hints(self) -> dict[str, OptimHint]:
        return {"a": OptimHint(lr_max=0.001)}


@pytest.mark.parametrize("lr", [0.01, 0.001, 0.0001])
def test_optimizer_groups_do_not_depend_on_the_learning_rate(lr: float) -> None:
    """A resume with a learning rate at or below the SSM cap used to change the number of
    groups, and the saved optimizer state no longer loaded."""
    saved = torch.optim.AdamW(param_groups(Hinted(), lr=0.004, weight_decay=0.0)).state_dict()
    groups = param_groups(Hinted(), lr=lr, weight_decay=0.0)
    assert [g["names"] for g in groups] == [["a"], ["b"]]
    assert [g["lr"] for g in groups] == [min(lr, 0.001), lr]
    torch.optim.AdamW(groups).load_state_dict(saved)


# -- operating-system errors ---------------------------------------------------------------
FULL_DISK = """
import errno, os
from audio_core import hookimpl
from audio_core.io import write_text

def fill(args, ctx):
    write_text(__import__("pathlib").Path(args.path), "x" * 100)

@hookimpl
def register_commands(subparsers):
    sub = subparsers.add_parser("fill", help="write a file")
    sub.add_argument("path")
    sub.set_defaults(handler=fill)
"""


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "full_disk.py").write_text(FULL_DISK)
    monkeypatch.syspath_prepend(str(tmp_path))
    target = tmp_path / "out" / "file.txt"
    real_fsync = os.fsync

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    status = main(["--no-plugins", "--plugin", "full_disk", "fill", str(target)])
    monkeypatch.setattr(os, "fsync", real_fsync)
    err = capsys.readouterr().err
    assert status == 1
    assert err == "audio-run: error: No space left on device (ENOSPC)\n"
    assert list((tmp_path / "out").iterdir()) == []  # the temporary file is gone


def test_os_errors_name_the_path_and_the_errno(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="File exists") as info:
        write_text(blocker / "inside.txt", "x")  # its parent folder cannot be made
    assert describe_os_error(info.value) == f"{blocker}: File exists (EEXIST)"
    exc = OSError(errno.EROFS, os.strerror(errno.EROFS), "/ro/x")
    assert describe_os_error(exc) == "/ro/x: Read-only file system (EROFS)"


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "keep.txt"
    path.write_text("old")

    def broken(handle: io.BufferedWriter) -> None:
        handle.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(path, broken)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


# -- what --force may replace, and permissions ---------------------------------------------
def test_force_replaces_only_folders_audio_run_wrote(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    with replacing_dir(mine) as folder:
        (folder / "a.wav").write_text("1")
    with pytest.raises(FileExistsError, match="already exists; pass --force"):
        check_replaceable(mine, force=False)
    with replacing_dir(mine, force=True) as folder:
        (folder / "b.wav").write_text("2")
    assert sorted(p.name for p in mine.iterdir() if not p.name.startswith(".")) == ["b.wav"]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="a folder that audio-run did not write"):
        check_replaceable(theirs, force=True)
    a_file = tmp_path / "song.wav"
    a_file.write_text("keep")
    with pytest.raises(FileExistsError, match="exists and is not a folder"):
        check_replaceable(a_file, force=True)
    assert a_file.read_text() == "keep"
    assert (theirs / "notes.txt").read_text() == "keep"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_files_and_folders_respect_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "f.txt", "x")
        with replacing_dir(tmp_path / "d") as folder:
            write_text(folder / "inner.txt", "y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "d" / "inner.txt").stat().st_mode) == 0o644


# -- data errors from DataLoader workers ---------------------------------------------------
def test_a_worker_wrapped_error_becomes_its_own_line() -> None:
    wrapped = (
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent "
        'call last):\n  File "x.py", line 3, in f\n    raise DataError(m)\n'
        "audio_data.errors.DataError: data/a.wav: truncated: its header promises 9 frames\n"
    )
    assert _worker_line(wrapped) == "data/a.wav: truncated: its header promises 9 frames"
    assert _worker_line("plain message") == "plain message"


# -- plugins that fail to load --------------------------------------------------------------
BROKEN = {
    "raises_runtime": "raise RuntimeError('no GPU here')",
    "bad_syntax": "def broken(:\n    pass",
    "exits": "import sys\nsys.exit(3)",
}


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("raises_runtime", "importing it failed: RuntimeError: no GPU here"),
        ("bad_syntax", "importing it failed: SyntaxError: "),
        ("exits", "importing it failed: it called sys.exit(3)"),
        ("..bad", "not a module name (dotted Python identifiers)"),
    ],
)
def test_every_failure_to_load_a_plugin_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, expected: str
) -> None:
    for name, source in BROKEN.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as info:
        make_plugin_manager(plugins=[module], load_entry_points=False, environ={})
    (line,) = info.value.problems
    assert line.startswith(f"--plugin {module!r}")
    assert expected in line
    assert "\n" not in line


# -- checkpoints made by hand ----------------------------------------------------------------
def test_a_checkpoint_lacking_what_a_command_reads_says_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "hand.pt"
    save_checkpoint(path, {"model": {}, "sample_rate": 16000})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert info.value.problems == (
        f"{path}: the checkpoint lacks config, decode_table (made by hand or damaged?)",
    )
    save_checkpoint(path, {"model": [1], "config": {}, "decode_table": 0, "sample_rate": 1})
    with pytest.raises(CheckpointError, match="its 'model' is not a state dict"):
        load_checkpoint(path)


# -- settings -------------------------------------------------------------------------------
def test_infinite_numbers_are_refused_like_nan(
    capsys: pytest.CaptureFixture[str], toy: list[str]
) -> None:
    for value in ("inf", "nan", "-inf"):
        status = main([*toy, "config", "--model", "toy", "--dataset", "tones",
                       f"train.optimizer.lr={value}"])  # fmt: skip
        assert status == 2
        assert "expected a finite number, got float" in capsys.readouterr().err


def test_model_and_dataset_bits_must_agree() -> None:
    from attrs import frozen

    from audio_core import DatasetSpec, ModelSpec, Registry, resolve_run_config

    @frozen(kw_only=True)
    class Bits:
        bits: int = 8

    registry = Registry(
        {
            "models": [ModelSpec(name="m", config_cls=Bits, target="a:b", summary="m")],
            "datasets": [DatasetSpec(name="d", config_cls=Bits, target="a:b", summary="d")],
        }
    )
    with pytest.raises(ConfigError) as info:
        resolve_run_config(registry, model="m", dataset="d", overrides=["model.bits=4"])
    assert info.value.problems == (
        "model.bits=4 but dataset.bits=8: the model must predict the classes the data holds "
        "(model.bits from override 'model.bits=4', dataset.bits)",
    )
