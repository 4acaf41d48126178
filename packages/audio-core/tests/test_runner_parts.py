"""The runner's parts on their own: schedules, atomic files, the loss curve, checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_core.io import atomic_write, write_text
from audio_core.runner.checkpoint import (
    SCHEMA,
    CheckpointError,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from audio_core.runner.logs import MetricsLog, loss_curve_svg
from audio_core.runner.schedule import LRSchedule


def optimizer(*lrs: float) -> torch.optim.Optimizer:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=1.0)


@settings(max_examples=40, deadline=None)
@given(step=st.integers(0, 1000), warmup=st.integers(0, 50), total=st.integers(1, 1000))
def test_cosine_with_warmup_matches_its_closed_form(step: int, warmup: int, total: int) -> None:
    opt = optimizer(0.004, 0.001)
    sched = LRSchedule(opt, name="cosine", warmup_steps=warmup, max_steps=total, patience=0,
                       factor=0.5, min_lr=1e-4)  # fmt: skip
    sched.apply(step)
    warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
    f = warm * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4 + (0.004 - 1e-4) * f)
    assert opt.param_groups[1]["lr"] == pytest.approx(1e-4 + (0.001 - 1e-4) * f)


def test_plateau_decays_after_patience_and_keeps_group_ratios() -> None:
    opt = optimizer(0.004, 0.001)
    sched = LRSchedule(opt, name="plateau", warmup_steps=0, max_steps=0, patience=2,
                       factor=0.2, min_lr=0.0)  # fmt: skip
    for value in [5.0, 4.0, 4.5, 4.2]:  # two validations without a new best: not yet
        sched.validated(value)
    sched.apply(10)
    assert [g["lr"] for g in opt.param_groups] == [0.004, 0.001]
    sched.validated(4.1)  # the third: decay
    sched.apply(11)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.0008, 0.0002])
    restored = LRSchedule(optimizer(0.004, 0.001), name="plateau", warmup_steps=0, max_steps=0,
                          patience=2, factor=0.2, min_lr=0.0)  # fmt: skip
    restored.load_state_dict(sched.state_dict())
    assert restored.factor(11) == sched.factor(11)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    write_text(target, "old")

    def broken(handle: object) -> None:
        handle.write(b"partial")  # type: ignore[attr-defined]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_metrics_log_truncates_after_a_step(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "m.jsonl")
    for step in range(1, 6):
        log.write({"step": step, "train_bits": 8.0 - step})
    log.truncate_after(3)
    assert [r["step"] for r in log.read()] == [1, 2, 3]
    svg = loss_curve_svg(log.read())
    assert svg.startswith("<svg")
    assert svg.count("<polyline") == 2


def test_checkpoints_round_trip_and_check_their_schema(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 3, "model": {"w": torch.ones(2)}})
    data = load_checkpoint(path, need=("step", "model"))
    assert data["schema"] == SCHEMA
    assert data["step"] == 3
    torch.save({"schema": 99}, tmp_path / "old.pt")
    with pytest.raises(
        CheckpointError, match=r"checkpoint schema 99, this audio-run reads schema 2"
    ):
        load_checkpoint(tmp_path / "old.pt")
    torch.save({"schema": 1}, tmp_path / "v01.pt")
    with pytest.raises(CheckpointError, match=r"schema 1 \(audio-run 0.1\).*retrain"):
        load_checkpoint(tmp_path / "v01.pt")
    with pytest.raises(CheckpointError, match=r"no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_mismatched_keys_are_listed(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 3)
    state = {"weight": torch.zeros(3, 2), "extra": torch.zeros(1)}
    with pytest.raises(CheckpointError) as info:
        load_model_state(model, state, tmp_path / "c.pt")
    problems = info.value.problems
    assert f"{tmp_path / 'c.pt'}: missing key bias" in problems
    assert f"{tmp_path / 'c.pt'}: unexpected key extra" in problems
    wrong = {"weight": torch.zeros(2, 2), "bias": torch.zeros(3)}
    with pytest.raises(
        CheckpointError, match=r"key weight has shape \(2, 2\), the model expects \(3, 2\)"
    ):
        load_model_state(model, wrong, tmp_path / "c.pt")
