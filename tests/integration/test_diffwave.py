"""DiffWave through the runner, as a user runs it: a tiny SaShiMi-DiffWave trains on the
built-in sc09-synth, resumes bit for bit, trains in two processes, samples with the full and
a respaced schedule; the reference's own tiny checkpoint imports and samples."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audio_core.testing import reference_dir

AUDIO_RUN = str(Path(sys.executable).with_name("audio-run"))
TINY = [
    "--model", "diffwave", "--dataset", "sc09-synth", "model.T=20", "model.step_embed=[8, 16, 16]",
    "model.backbone.d_model=4", "model.backbone.n_layers=1", "model.backbone.pool=[2, 2]",
    "model.backbone.l_max=2000", "model.backbone.kernel.d_state=4", "dataset.sample_len=2000",
    "train.batch_size=4", "train.log_every=1", "train.val_batches=2", "train.val_every=3",
]  # fmt: skip


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "sc09-synth"
    run(root.parent, "data", "make", "sc09-synth", "--root", str(root), "--per-class", "10")
    return root


def run(
    cwd: Path, *args: str, check: bool = True, quiet: bool = True
) -> subprocess.CompletedProcess[str]:
    flags = ["--quiet"] if quiet else []
    result = subprocess.run(
        [AUDIO_RUN, *args, *flags], cwd=cwd, capture_output=True, text=True, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def records(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]  # type: ignore[no-any-return]


def test_training_logs_the_noise_mse_and_resumes_bit_for_bit(
    tmp_path: Path, data_root: Path
) -> None:
    common = [*TINY, f"dataset.root={data_root}", "--threads=2"]  # the resume reads it back
    run(tmp_path, *common, "train.max_steps=6", "output.name=whole")
    run(tmp_path, *common, "train.max_steps=3", "output.name=split")
    run(tmp_path, "train", "--resume", "runs/split", "train.max_steps=6")
    whole = state(tmp_path / "runs/whole/checkpoints/last.pt")
    split = state(tmp_path / "runs/split/checkpoints/last.pt")
    assert whole.keys() == split.keys()
    for key in whole:
        assert torch.equal(whole[key], split[key]), key
    rows = records(tmp_path / "runs/whole")
    losses = [r["train_loss"] for r in rows if "train_loss" in r]
    assert len(losses) == 6
    assert all(0 < float(x) < 10 for x in losses)
    assert not any("train_bits" in r for r in rows)  # not a likelihood
    assert any("val_loss" in r for r in rows)
    assert [r["step"] for r in records(tmp_path / "runs/split") if "train_loss" in r] == [
        1, 2, 3, 4, 5, 6
    ]  # fmt: skip
    curve = (tmp_path / "runs/whole/loss_curve.svg").read_text()
    assert "<polyline" in curve
    assert "mse" in curve.lower()


def test_two_processes_train_as_one_on_the_same_global_batch(
    tmp_path: Path, data_root: Path
) -> None:
    common = [*TINY, f"dataset.root={data_root}", "train.max_steps=3"]
    run(tmp_path, *common, "output.name=single")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         f"--master_port={port}", "--master_addr=127.0.0.1", AUDIO_RUN, *common,
         "output.name=ddp", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = [r["train_loss"] for r in records(tmp_path / "runs/ddp") if "train_loss" in r]
    single = [r["train_loss"] for r in records(tmp_path / "runs/single") if "train_loss" in r]
    assert ddp == pytest.approx(single, rel=1e-5)  # the same steps and noise draws


def test_sampling_with_the_full_and_a_respaced_schedule(tmp_path: Path, data_root: Path) -> None:
    run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=2", "output.name=t")
    ckpt = "runs/t/checkpoints/last.pt"
    full = run(tmp_path, "generate", "--checkpoint", ckpt,
               "--output", "full", "generate.n_samples=3", "generate.n_batch=2",
               "generate.l_sample=2000", check=False)  # fmt: skip
    assert full.returncode == 0, full.stderr
    manifest = json.loads((tmp_path / "full/manifest.json").read_text())
    assert manifest["settings"]["order"] == "generation order: the model has no likelihood"
    assert manifest["settings"]["steps"] == 0
    assert [c["file"] for c in manifest["clips"]] == ["0000.wav", "0001.wav", "0002.wav"]
    assert all(c["log_likelihood"] is None for c in manifest["clips"])
    audio = torch.load(tmp_path / "full/audio.pt", weights_only=True)
    assert audio.shape == (3, 2000)
    assert float(audio.abs().max()) <= 1
    short = run(tmp_path, "generate", "--checkpoint", ckpt, "--output", "short",
                "generate.n_samples=2", "generate.steps=5", "generate.l_sample=2000")  # fmt: skip
    assert short.returncode == 0
    assert json.loads((tmp_path / "short/manifest.json").read_text())["settings"]["steps"] == 5
    for bad, message in (
        ("generate.steps=21", "generate.steps must be between 1 and the schedule's 20; got 21"),
        ("generate.l_prefix=8", "diffwave generates whole clips"),
    ):
        refused = run(tmp_path, "generate", "--checkpoint", ckpt, "--output", "x", bad,
                      check=False)  # fmt: skip
        assert refused.returncode == 2, refused.stderr
        assert message in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


def test_an_autoregressive_model_refuses_diffusion_steps(tmp_path: Path, data_root: Path) -> None:
    tiny_lm = ["--model", "sashimi", "--dataset", "sc09-synth", f"dataset.root={data_root}",
               "model.d_model=4", "model.n_layers=1", "model.pool=[2]", "model.l_max=2000",
               "model.kernel.d_state=4", "dataset.sample_len=2000", "train.batch_size=4",
               "train.max_steps=1", "output.name=lm"]  # fmt: skip
    run(tmp_path, *tiny_lm)
    refused = run(tmp_path, "generate", "--checkpoint", "runs/lm/checkpoints/last.pt",
                  "--output", "x", "generate.steps=4", check=False)  # fmt: skip
    assert refused.returncode == 2
    assert "generate.steps applies to diffusion models" in refused.stderr


def test_the_reference_tiny_checkpoint_imports_and_samples(tmp_path: Path) -> None:
    pkl = reference_dir(__file__, "diffwave", "tiny") / "sashimi_tiny.pkl"
    imported = run(
        tmp_path, "checkpoint", "import", str(pkl), "--output", "ours.pt", "--check", quiet=False
    )
    text = imported.stdout + imported.stderr
    assert "diffwave-sashimi layout; preset sashimi-diffwave-small-sc09 (inferred)" in text
    assert "check: skipped (a diffusion model has no recurrent mode to compare)" in text
    run(tmp_path, "generate", "--checkpoint", "ours.pt", "--output", "gen",
        "generate.n_samples=1", "generate.steps=2", "generate.l_sample=4096")  # fmt: skip
    assert (tmp_path / "gen/0000.wav").is_file()
