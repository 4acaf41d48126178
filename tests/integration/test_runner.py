"""The runner end to end: `audio-run train` / `--resume` / `generate` on a tiny SaShiMi and
sc09-synth, killed runs, diverging runs, and DistributedDataParallel on CPU (gloo)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
import torch

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
    audio_run = Path(sys.executable).with_name("audio-run")
    subprocess.run(
        [str(audio_run), "data", "make", "sc09-synth", "--root", str(root), "--per-class", "10",
         "--quiet"], check=True,
    )  # fmt: skip
    return root


def run(
    tmp: Path, *args: str, check: bool = True, **kw: object
) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).with_name("audio-run")), *args, "--quiet"]
    result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if check:
        assert result.returncode == 0, result.stderr
    return result  # type: ignore[no-any-return]


def metrics(run_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]  # type: ignore[no-any-return]


def test_training_lowers_the_loss_and_leaves_a_run_folder(tmp_path: Path, data_root: Path) -> None:
    run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=30", "train.val_every=15",
        "output.name=a", "train.optimizer.lr=0.01")  # fmt: skip
    folder = tmp_path / "runs" / "a"
    for name in ("config.toml", "versions.json", "metrics.jsonl", "loss_curve.svg",
                 "checkpoints/last.pt", "checkpoints/best.pt"):  # fmt: skip
        assert (folder / name).is_file(), name
    bits = [r["train_bits"] for r in metrics(folder) if "train_bits" in r]
    assert len(bits) == 30
    assert sum(bits[-5:]) / 5 < sum(bits[:5]) / 5 - 0.3  # it learns
    assert "sashimi-audio-core" in json.loads((folder / "versions.json").read_text())
    assert "<polyline" in (folder / "loss_curve.svg").read_text()
    again = run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=2", "output.name=a",
                check=False)  # fmt: skip
    assert again.returncode == 2
    assert "the run folder exists; resume it with `audio-run train --resume" in again.stderr


def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(
    tmp_path: Path, data_root: Path
) -> None:
    common = [
        *TINY,
        f"dataset.root={data_root}",
        "train.val_every=3",
        "train.scheduler.warmup_steps=4",
        "--threads=2",  # both runs alike; the resume takes it from the checkpoint
    ]
    run(tmp_path, *common, "train.max_steps=10", "output.name=whole")
    run(tmp_path, *common, "train.max_steps=5", "output.name=split")
    run(tmp_path, "train", "--resume", "runs/split", "train.max_steps=10")
    whole = state(tmp_path / "runs/whole/checkpoints/last.pt")
    split = state(tmp_path / "runs/split/checkpoints/last.pt")
    assert whole.keys() == split.keys()
    for key in whole:
        assert torch.equal(whole[key], split[key]), key
    steps = [r["step"] for r in metrics(tmp_path / "runs/split") if "train_bits" in r]
    assert steps == list(range(1, 11))  # the log continues without repeats


def test_a_resume_keeps_the_thread_count_it_was_trained_with(
    tmp_path: Path, data_root: Path
) -> None:
    """Sums over threads round differently: ``--threads auto`` on a resume takes the count
    the checkpoint records, so that the run continues bit for bit; ``--threads N`` wins."""
    run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=2", "output.name=t",
        "--threads=1")  # fmt: skip
    audio_run = str(Path(sys.executable).with_name("audio-run"))
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    resumed = subprocess.run(
        [audio_run, "train", "--resume", "runs/t", "train.max_steps=3"],
        cwd=tmp_path, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "threads: 1 (as the run was trained so far, so that it resumes bit for bit" in (
        resumed.stderr
    )
    asked = subprocess.run(
        [audio_run, "train", "--resume", "runs/t", "train.max_steps=4", "--threads", "2"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    assert "threads: 2 (--threads 2)" in asked.stderr


def test_a_killed_run_loses_at_most_one_checkpoint_interval(
    tmp_path: Path, data_root: Path
) -> None:
    cmd = [str(Path(sys.executable).with_name("audio-run")), *TINY, f"dataset.root={data_root}",
           "train.max_steps=400", "train.checkpoint_every=3", "output.name=k",
           "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "runs/k/metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = max(r["step"] for r in metrics(tmp_path / "runs/k") if "step" in r)
    saved = torch.load(tmp_path / "runs/k/checkpoints/last.pt", weights_only=False)["step"]
    assert done - saved <= 3
    result = run(tmp_path, "train", "--resume", "runs/k", "train.max_steps=20")
    assert f"resuming runs/k at step {saved}" in result.stderr
    assert torch.load(tmp_path / "runs/k/checkpoints/last.pt", weights_only=False)["step"] == 20


def test_sigint_writes_a_checkpoint_and_exits_130(tmp_path: Path, data_root: Path) -> None:
    cmd = [str(Path(sys.executable).with_name("audio-run")), *TINY, f"dataset.root={data_root}",
           "train.max_steps=400", "output.name=i", "--quiet"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    log = tmp_path / "runs/i/metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (log.exists() and log.read_text().count("\n") >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    step = torch.load(tmp_path / "runs/i/checkpoints/last.pt", weights_only=False)["step"]
    assert f"SIGINT: wrote runs/i/checkpoints/last.pt at step {step}" in err


NAN_PLUGIN = """
import math, torch
from audio_core import ModelSpec, hookimpl
from audio_models.builders import build_sashimi
from audio_models.config import SaShiMiModelConfig

def build(config):
    model = build_sashimi(config)
    calls = [0]
    original = model.forward
    def forward(x):
        calls[0] += 1
        loss = original(x)
        return loss * math.nan if calls[0] >= 4 else loss
    model.forward = forward
    return model

@hookimpl
def register_models():
    yield ModelSpec(name="diverging", config_cls=SaShiMiModelConfig, target="nan_plugin:build",
                    summary="diverges at step 4")
"""


def test_a_nan_loss_stops_the_run_naming_the_step(tmp_path: Path, data_root: Path) -> None:
    (tmp_path / "nan_plugin.py").write_text(NAN_PLUGIN)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "AUDIO_RUN_PLUGINS": "nan_plugin"}
    args = [a if a != "sashimi" else "diverging" for a in TINY]
    result = run(tmp_path, *args, f"dataset.root={data_root}", "train.max_steps=10",
                 "train.checkpoint_every=2", "output.name=n", check=False, env=env)  # fmt: skip
    assert result.returncode == 2
    assert (
        "the training loss is nan at step 4; stopping (the last good checkpoint is "
        in result.stderr
    )


def test_generation_sorts_by_likelihood_and_the_manifest_rescores(
    tmp_path: Path, data_root: Path
) -> None:
    run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=4", "output.name=g")
    ckpt = tmp_path / "runs/g/checkpoints/last.pt"
    out = tmp_path / "samples"
    run(tmp_path, "generate", "--checkpoint", str(ckpt), "--output", str(out),
        "generate.n_samples=3", "generate.n_reps=2", "generate.l_sample=300",
        "generate.l_prefix=100", "generate.n_batch=4")  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    clips = manifest["clips"]
    assert [c["file"] for c in clips] == sorted(p.name for p in out.glob("*.wav"))
    lls = [c["log_likelihood"] for c in clips]
    assert lls == sorted(lls)  # lowest first
    assert {c["prefix_example"] for c in clips} == {0, 1, 2}
    codes = torch.load(out / "codes.pt").long()
    from audio_core.manager import make_plugin_manager
    from audio_core.registry import Registry
    from audio_core.resolve import resolve_run_config

    saved = torch.load(ckpt, weights_only=False)
    registry = Registry.from_plugin_manager(make_plugin_manager())
    model = resolve_run_config(registry, base=saved["config"]).model.build()
    model.load_state_dict(saved["model"])
    with torch.no_grad():
        rescored = model.eval().log_likelihood(codes, start=100)
    assert torch.allclose(rescored.double(), torch.tensor(lls, dtype=torch.float64), atol=1e-3)
    with wave.open(str(out / clips[0]["file"])) as handle:
        assert (handle.getnchannels(), handle.getsampwidth(), handle.getframerate()) == (
            1,
            2,
            16000,
        )
        pcm = torch.frombuffer(bytearray(handle.readframes(300)), dtype=torch.int16).float() / 32767
    assert torch.allclose(pcm, saved["decode_table"][codes[0]], atol=1 / 32767)
    again = run(tmp_path, "generate", "--checkpoint", str(ckpt), "--output", str(out), check=False)
    assert again.returncode == 2
    assert "already exists; pass --force" in again.stderr


def test_two_process_ddp_matches_one_process_on_the_same_global_batch(
    tmp_path: Path, data_root: Path
) -> None:
    common = [*TINY, f"dataset.root={data_root}", "train.max_steps=4", "train.val_every=2"]
    run(tmp_path, *common, "output.name=single")
    audio_run = str(Path(sys.executable).with_name("audio-run"))
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         f"--master_port={port}", "--master_addr=127.0.0.1",
         audio_run, *common, "output.name=ddp", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = metrics(tmp_path / "runs/ddp")
    single = metrics(tmp_path / "runs/single")
    prints = next(r["ddp_param_fingerprints"] for r in ddp if "ddp_param_fingerprints" in r)
    assert len(prints) == 2
    assert prints[0] == prints[1]  # both ranks hold identical parameters
    ddp_bits = [r["train_bits"] for r in ddp if "train_bits" in r]
    single_bits = [r["train_bits"] for r in single if "train_bits" in r]
    assert ddp_bits == pytest.approx(single_bits, rel=1e-5)
    a = state(tmp_path / "runs/ddp/checkpoints/last.pt")
    b = state(tmp_path / "runs/single/checkpoints/last.pt")
    # gloo sums the two halves' gradients in another order than one process does; Adam turns
    # such 1e-7 differences of near-zero gradients into up to 1e-2 of a step (lr 0.004)
    worst = max((float((a[k] - b[k]).abs().max()), k) for k in a if a[k].is_floating_point())
    assert worst[0] < 1e-4, worst


def test_bf16_autocast_trains(tmp_path: Path, data_root: Path) -> None:
    run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=3", "train.precision=bf16",
        "output.name=bf")  # fmt: skip
    bits = [r["train_bits"] for r in metrics(tmp_path / "runs/bf") if "train_bits" in r]
    assert len(bits) == 3
    assert all(0 < b < 9 for b in bits)


def test_setup_problems_are_one_line_and_exit_2(tmp_path: Path, data_root: Path) -> None:
    missing = run(tmp_path, "--model", "sashimi", "--dataset", "sc09",
                  f"dataset.root={tmp_path / 'nowhere'}", check=False)  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"audio-run: error: {tmp_path / 'nowhere'}: no such folder; download SC09 with "
        f"'audio-run data download sc09 --root {tmp_path / 'nowhere'}' or set dataset.root"
    ]
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        board = run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=1",
                    "output.tensorboard=true", "output.name=tb", check=False)  # fmt: skip
        assert board.returncode == 2
        assert "output.tensorboard=true needs the tensorboard package" in board.stderr
    big = run(tmp_path, *TINY, f"dataset.root={data_root}", "train.batch_size=500",
              "output.name=big", check=False)  # fmt: skip
    assert big.returncode == 2
    assert "fewer than train.batch_size=500; lower the batch size" in big.stderr
    assert not (tmp_path / "runs").exists()  # a run that cannot start leaves no folder


@pytest.mark.skipif(
    shutil.which("cc") is None and not os.environ.get("AUDIO_MODELS_COMPILER_REQUIRED"),
    reason="no C compiler (CI installs gcc and requires it)",
)
def test_generate_engines_agree_and_the_chosen_one_is_printed(
    tmp_path: Path, data_root: Path
) -> None:
    run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=4", "output.name=e")
    ckpt = tmp_path / "runs/e/checkpoints/last.pt"
    manifests, codes = {}, {}
    for engine in ("auto", "eager", "compiled"):
        out = tmp_path / f"samples-{engine}"
        result = run(tmp_path, "generate", "--checkpoint", str(ckpt), "--output", str(out),
                     "--engine", engine, "generate.n_samples=3", "generate.l_sample=200",
                     "generate.n_batch=3")  # fmt: skip
        used = "eager" if engine == "eager" else "compiled (fused C step)"
        assert f"engine: {used}" in result.stderr
        manifests[engine] = json.loads((out / "manifest.json").read_text())
        codes[engine] = torch.load(out / "codes.pt")
    assert manifests["auto"]["settings"]["engine"].startswith("compiled")
    assert torch.equal(codes["eager"], codes["compiled"])
    lls = {e: [c["log_likelihood"] for c in m["clips"]] for e, m in manifests.items()}
    assert lls["eager"] == pytest.approx(lls["compiled"], rel=1e-5)


def test_audio_run_test_reports_the_split_nll_and_accuracy(tmp_path: Path, data_root: Path) -> None:
    run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=3", "output.name=t")
    ckpt = tmp_path / "runs/t/checkpoints/last.pt"
    table = run(tmp_path, "test", "--checkpoint", str(ckpt)).stdout.splitlines()
    assert table[0].startswith("sashimi on sc09-synth test: 20 clips, 40,000 samples")
    assert table[1].startswith("NLL ")
    assert "bits/sample" in table[1]
    report = json.loads(run(tmp_path, "test", "--checkpoint", str(ckpt), "--json").stdout)
    assert report["split"] == "test" and report["samples"] == 20 * 2000  # noqa: PT018
    assert 0 <= report["accuracy"] <= report["accuracy@3"] <= report["accuracy@10"] <= 1
    # the same figure computed independently: the model's own mean loss over the split
    from audio_core.manager import make_plugin_manager
    from audio_core.registry import Registry
    from audio_core.resolve import resolve_run_config

    saved = torch.load(ckpt, weights_only=False)
    config = resolve_run_config(Registry.from_plugin_manager(make_plugin_manager()),
                                base=saved["config"])  # fmt: skip
    model = config.model.build()
    model.load_state_dict(saved["model"])
    split = config.dataset.build().split("test")
    codes = torch.stack([split[i][0] for i in range(len(split))])
    with torch.no_grad():
        bits = float(model.eval().loss(codes).bits)
    assert report["bits_per_sample"] == pytest.approx(bits, rel=1e-5)
    val = [r for r in metrics(tmp_path / "runs/t") if "val_bits" in r]
    assert all(0 <= r["val_accuracy"] <= 1 for r in val)  # accuracy is logged in training
    bad = run(tmp_path, "test", "--checkpoint", str(ckpt), "model.d_model=4", check=False)
    assert bad.returncode == 2
    assert "test takes only dataset.* overrides" in bad.stderr


def test_samplernn_trains_with_tbptt_one_update_per_chunk(tmp_path: Path, data_root: Path) -> None:
    args = ["--model", "samplernn", "--dataset", "sc09-synth", "model.frame_sizes=[4, 2]",
            "model.d_hidden=16", "model.d_model=8", "model.tbptt=512", f"dataset.root={data_root}",
            "dataset.per_class=10", "dataset.sample_len=2000", "train.batch_size=4",
            "train.log_every=1", "train.val_batches=1", "train.val_every=2"]  # fmt: skip
    run(tmp_path, *args, "train.max_steps=4", "output.name=s")
    saved = torch.load(tmp_path / "runs/s/checkpoints/last.pt", weights_only=False)
    assert saved["step"] == 4
    steps = {int(s["step"]) for s in saved["optimizer"]["state"].values()}
    # 2000 samples in chunks of 512: four updates per batch; the learnt h0 only starts a
    # sequence, so it is updated once per batch
    assert steps == {4 * 4, 4}
    # resuming in the middle repeats an uninterrupted run exactly, chunks included
    run(tmp_path, *args, "train.max_steps=2", "output.name=r")
    run(tmp_path, "train", "--resume", "runs/r", "train.max_steps=4")
    whole, split = (
        state(tmp_path / "runs/s/checkpoints/last.pt"),
        state(tmp_path / "runs/r/checkpoints/last.pt"),
    )
    assert all(torch.equal(whole[k], split[k]) for k in whole)


def _losses_with_compile(tmp_path: Path, data_root: Path, *modes: str) -> dict[str, list[object]]:
    """Per ``train.compile`` mode, the training losses of 3 steps of the tiny model."""
    losses = {}
    for mode in modes:
        run(tmp_path, *TINY, f"dataset.root={data_root}", "train.max_steps=3",
            f"train.compile={mode}", f"output.name={mode}")  # fmt: skip
        losses[mode] = [r["train_bits"] for r in metrics(tmp_path / f"runs/{mode}")
                        if "train_bits" in r]  # fmt: skip
    return losses


def test_a_compiled_training_forward_trains_as_the_eager_one(
    tmp_path: Path, data_root: Path
) -> None:
    """``train.compile=eager`` traces the whole forward as one graph (``fullgraph=True``) and
    runs it as traced: the losses equal the uncompiled run's bit for bit."""
    losses = _losses_with_compile(tmp_path, data_root, "none", "eager")
    assert len(losses["none"]) == 3
    assert losses["eager"] == losses["none"]


@pytest.mark.slow
def test_an_inductor_compiled_training_forward_matches_the_eager_one(
    tmp_path: Path, data_root: Path
) -> None:
    """``train.compile=inductor`` (generated code; about 90 s of compiling on 2 cores): the
    losses equal the uncompiled run's to float32 rounding."""
    losses = _losses_with_compile(tmp_path, data_root, "none", "inductor")
    assert len(losses["inductor"]) == 3
    assert losses["inductor"] == pytest.approx(losses["none"], rel=1e-5)


def test_a_forward_that_does_not_compile_is_one_line(tmp_path: Path, data_root: Path) -> None:
    result = run(tmp_path, "--model", "samplernn", "--dataset", "sc09-synth",
                 "model.frame_sizes=[2, 2]", "model.d_hidden=16", "model.n_rnn=1",
                 "model.d_model=8", "model.tbptt=0", "dataset.per_class=10",
                 "dataset.sample_len=2000", f"dataset.root={data_root}", "train.batch_size=4",
                 "train.max_steps=2", "train.compile=eager", check=False)  # fmt: skip
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(
        "audio-run: error: train.compile=eager: the model's training forward does not compile "
        "as one graph ("
    ), result.stderr
    assert lines[-1].endswith("; set train.compile=none")
    assert "Traceback" not in result.stderr
