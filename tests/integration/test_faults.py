"""Faults end to end: concurrent runs, runs stopped early, diverged weights, resumes with new
settings, torn logs, contradicting settings, unwritable outputs, damaged data behind workers.

Each test is one class of the reliability issue's attack, driven through the installed
``audio-run`` in real processes, on a tiny SaShiMi and sc09-synth.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

AUDIO_RUN = str(Path(sys.executable).with_name("audio-run"))
TINY = [
    "--model", "sashimi", "--dataset", "sc09-synth",
    "model.d_model=8", "model.n_layers=1", "model.pool=[2, 2]", "model.kernel.name=s4d",
    "model.kernel.d_state=8", "model.l_max=2000",
    "dataset.per_class=10", "dataset.sample_len=2000",
    "train.batch_size=4", "train.log_every=1", "train.val_batches=2",
]  # fmt: skip


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "sc09-synth"
    subprocess.run(
        [AUDIO_RUN, "data", "make", "sc09-synth", "--root", str(root), "--per-class", "10",
         "--quiet"], check=True,
    )  # fmt: skip
    return root


def run(
    tmp: Path, *args: str, check: bool = True, **kw: object
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [AUDIO_RUN, *args, "--quiet"], cwd=tmp, capture_output=True, text=True, timeout=300, **kw
    )  # type: ignore[call-overload]
    if check:
        assert result.returncode == 0, result.stderr
    return result  # type: ignore[no-any-return]


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("audio-run: error:")]


def wait_for_lines(path: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {n} lines")


# -- 1: one process per run folder -------------------------------------------------------------
def test_a_second_training_or_resume_of_a_busy_folder_exits_2_naming_the_holder(
    tmp_path: Path, data_root: Path
) -> None:
    args = [*TINY, f"dataset.root={data_root}", "output.name=busy"]
    first = subprocess.Popen(
        [AUDIO_RUN, *args, "train.max_steps=2000", "train.checkpoint_every=2", "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_lines(tmp_path / "runs/busy/metrics.jsonl", 3)
        second = run(tmp_path, *args, "train.max_steps=3", check=False)
        again = run(tmp_path, "train", "--resume", "runs/busy", check=False)
        config_before = (tmp_path / "runs/busy/config.toml").read_text()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    expected = (
        f"audio-run: error: runs/busy: in use by another audio-run (PID {first.pid}); wait for "
        "it to finish or choose another output.name"
    )
    for result in (second, again):
        assert result.returncode == 2
        assert error_lines(result) == [expected]
    assert "max_steps = 2000\n" in config_before  # the second start wrote nothing
    steps = [json.loads(line)["step"] for line in
             (tmp_path / "runs/busy/metrics.jsonl").read_text().splitlines()
             if line.strip().endswith("}") and "train_bits" in line]  # fmt: skip
    assert steps == sorted(set(steps))  # one writer: no interleaved or repeated steps
    resumed = run(tmp_path, "train", "--resume", "runs/busy", "train.max_steps=6")
    assert "resuming runs/busy at step" in resumed.stderr  # the dead holder's lock is gone


# -- 2: a run that stopped before its first checkpoint ------------------------------------------
def test_a_run_stopped_before_its_first_checkpoint_restarts_with_resume(
    tmp_path: Path, data_root: Path
) -> None:
    args = [*TINY, f"dataset.root={data_root}", "output.name=early"]
    proc = subprocess.Popen(
        [AUDIO_RUN, *args, "train.max_steps=2000", "train.checkpoint_every=1000", "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_lines(tmp_path / "runs/early/metrics.jsonl", 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "runs/early/checkpoints/last.pt").exists()
    retry = run(tmp_path, *args, "train.max_steps=3", check=False)
    assert retry.returncode == 2
    assert error_lines(retry) == [
        "audio-run: error: runs/early: the run folder exists but holds no checkpoint (its run "
        "stopped before the first); restart it from step 0 with `audio-run train --resume "
        "runs/early` or choose another output.name"
    ]
    restarted = run(tmp_path, "train", "--resume", "runs/early", "train.max_steps=3")
    assert (
        "note: runs/early stopped before its first checkpoint: restarting it from step 0 with "
        "its config.toml" in restarted.stderr
    )
    steps = [r["step"] for r in map(json.loads,
             (tmp_path / "runs/early/metrics.jsonl").read_text().splitlines())
             if "train_bits" in r]  # fmt: skip
    assert steps == [1, 2, 3]  # the stopped run's log is not mixed in
    assert torch.load(tmp_path / "runs/early/checkpoints/last.pt", weights_only=False)["step"] == 3


# -- 3: weights that diverge while the loss is still finite --------------------------------------
DIVERGING = """
import math, torch
from audio_core import ModelSpec, hookimpl
from audio_models.builders import build_sashimi
from audio_models.config import SaShiMiModelConfig

def build(config):
    model = build_sashimi(config)
    model.register_parameter("spare", torch.nn.Parameter(torch.zeros(3)))
    calls = [0]
    original = model.forward
    def forward(x):
        calls[0] += 1
        if calls[0] == 3:
            with torch.no_grad():
                model.spare.fill_(math.inf)  # blown up; the loss does not show it yet
        return original(x)
    model.forward = forward
    return model

@hookimpl
def register_models():
    yield ModelSpec(name="blowing-up", config_cls=SaShiMiModelConfig,
                    target="diverging_plugin:build", summary="weights diverge at step 3")
"""


def test_diverged_weights_are_never_checkpointed_and_the_last_good_one_generates(
    tmp_path: Path, data_root: Path
) -> None:
    (tmp_path / "diverging_plugin.py").write_text(DIVERGING)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "AUDIO_RUN_PLUGINS": "diverging_plugin"}
    args = [a if a != "sashimi" else "blowing-up" for a in TINY]
    result = run(tmp_path, *args, f"dataset.root={data_root}", "train.max_steps=10",
                 "train.checkpoint_every=1", "output.name=d", check=False, env=env)  # fmt: skip
    assert result.returncode == 2
    assert error_lines(result) == [
        "audio-run: error: the weights are not finite at step 3; stopping without writing "
        "last.pt (the last good checkpoint is runs/d/checkpoints/last.pt (step 2); try a lower "
        "train.optimizer.lr or train.grad_clip)"
    ]
    saved = torch.load(tmp_path / "runs/d/checkpoints/last.pt", weights_only=False)
    assert saved["step"] == 2
    assert all(torch.isfinite(t).all() for t in saved["model"].values())
    run(tmp_path, "generate", "--checkpoint", "runs/d/checkpoints/last.pt", "--output", "s",
        "generate.n_samples=2", "generate.l_sample=50", env=env)  # fmt: skip
    assert len(list((tmp_path / "s").glob("*.wav"))) == 2


# -- 4 and 5: resuming with new settings, after a torn log ----------------------------------------
def test_a_resume_takes_a_new_learning_rate_and_survives_a_torn_log(
    tmp_path: Path, data_root: Path
) -> None:
    run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=3", "output.name=r")
    log = tmp_path / "runs/r/metrics.jsonl"
    with log.open("a") as handle:
        handle.write('{"step": 4, "train_bi')  # what kill -9 leaves mid-write
    # at and below the SSM parameters' cap (0.001): the group structure used to change
    for lr, steps in (("0.001", 5), ("0.0001", 7)):
        run(tmp_path, "train", "--resume", "runs/r", f"train.max_steps={steps}",
            f"train.optimizer.lr={lr}")  # fmt: skip
        saved = torch.load(tmp_path / "runs/r/checkpoints/last.pt", weights_only=False)
        assert saved["step"] == steps
        assert max(g["lr"] for g in saved["optimizer"]["param_groups"]) <= float(lr)
    text = log.read_text()
    for bad in ("train_bi\n", "NaN", "Infinity"):
        assert bad not in text
    steps = [json.loads(line)["step"] for line in text.splitlines() if "train_bits" in line]
    assert steps == list(range(1, 8))


def test_an_optimizer_state_that_cannot_apply_says_so_and_reset_optimizer_resumes(
    tmp_path: Path, data_root: Path
) -> None:
    run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=2", "output.name=o")
    other = run(tmp_path, "train", "--resume", "runs/o", "train.max_steps=4",
                "train.optimizer.name=sgd", check=False)  # fmt: skip
    assert other.returncode == 2
    assert error_lines(other) == [
        "audio-run: error: runs/o/checkpoints/last.pt: its optimizer state is adamw's and this "
        "run uses sgd (train.optimizer.name); resume with --reset-optimizer to start a fresh sgd "
        "optimizer from these weights"
    ]
    reset = run(tmp_path, "train", "--resume", "runs/o", "--reset-optimizer",
                "train.max_steps=4", "train.optimizer.name=sgd")  # fmt: skip
    assert "note: --reset-optimizer" in reset.stderr
    assert torch.load(tmp_path / "runs/o/checkpoints/last.pt", weights_only=False)["step"] == 4
    alone = run(tmp_path, *TINY, f"dataset.root={data_root}", "--reset-optimizer", check=False)
    assert error_lines(alone) == ["audio-run: error: --reset-optimizer needs --resume RUN_DIR"]


# -- 6: settings that contradict each other -------------------------------------------------------
def test_model_bits_that_contradict_the_data_are_refused_before_anything_runs(
    tmp_path: Path, data_root: Path
) -> None:
    result = run(tmp_path, *TINY, f"dataset.root={data_root}", "model.bits=4", check=False)
    assert result.returncode == 2
    assert error_lines(result) == [
        "audio-run: error: model.bits=4 but dataset.bits=8: the model must predict the classes "
        "the data holds (model.bits from override 'model.bits=4', dataset.bits)"
    ]
    assert not (tmp_path / "runs").exists()


# -- 7, 8 and 9: operating-system errors, --force and permissions --------------------------------
def test_an_output_root_that_cannot_be_made_is_one_line_with_status_1(
    tmp_path: Path, data_root: Path
) -> None:
    (tmp_path / "blocker").write_text("keep")
    result = run(tmp_path, *TINY, f"dataset.root={data_root}", "output.root=blocker/runs",
                 "output.name=x", check=False)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "audio-run: error: blocker/runs/x: Not a directory (ENOTDIR)"
    ]
    assert (tmp_path / "blocker").read_text() == "keep"


def test_outputs_respect_the_umask_and_force_never_replaces_a_users_file(
    tmp_path: Path, data_root: Path
) -> None:
    def umask_022() -> None:
        os.umask(0o022)

    run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=2", "output.name=u",
        preexec_fn=umask_022)  # fmt: skip
    folder = tmp_path / "runs/u"
    for path in (folder, folder / "checkpoints"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path
    for path in (folder / "config.toml", folder / "metrics.jsonl", folder / "checkpoints/last.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    mine = tmp_path / "mine.wav"
    mine.write_bytes(b"the user's recording")
    forced = run(tmp_path, "generate", "--checkpoint", "runs/u/checkpoints/last.pt", "--output",
                 str(mine), "--force", "generate.n_samples=1", "generate.l_sample=20",
                 check=False)  # fmt: skip
    assert forced.returncode == 2
    assert "exists and is not a folder" in forced.stderr
    assert mine.read_bytes() == b"the user's recording"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    out = tmp_path / "samples"
    run(tmp_path, "generate", "--checkpoint", "runs/u/checkpoints/last.pt", "--output", str(out),
        "generate.n_samples=1", "generate.l_sample=20", preexec_fn=umask_022)  # fmt: skip
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o644}


# -- 10 and 13: damaged data behind DataLoader workers --------------------------------------------
@pytest.mark.parametrize("workers", [0, 1])
def test_a_truncated_wav_is_one_line_naming_it_with_or_without_workers(
    tmp_path: Path, data_root: Path, workers: int
) -> None:
    root = tmp_path / "data"
    shutil.copytree(data_root, root)
    victims = sorted(root.glob("*/*.wav"))
    for victim in victims:  # every clip: whichever the first batch reads is cut
        victim.write_bytes(victim.read_bytes()[:-1000])
    result = run(tmp_path, *TINY, f"dataset.root={root}", "train.max_steps=2",
                 f"train.num_workers={workers}", "output.name=t", check=False)  # fmt: skip
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert line.startswith(f"audio-run: error: {root}/")
    assert ": truncated: its header promises " in line
    assert "Traceback" not in result.stderr
