"""A third party's parts, installed from their own folder, used in runs: the example plugin's
kernel inside SaShiMi, the generic language model over its backbone, training on its dataset;
and the reference's checkpoints imported and sampled."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audio_core import Registry, make_plugin_manager
from audio_core.resolve import resolve_run_config
from audio_core.testing import reference_dir

TONES = ["--dataset", "example-tones", "dataset.n_examples=40", "dataset.sample_len=256"]
TRAIN = ["train.batch_size=4", "train.max_steps=6", "train.val_every=3", "train.log_every=1"]


def run(tmp: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).with_name("audio-run")), *args]
    result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=300, check=False)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_the_example_kernel_and_backbone_are_listed(tmp_path: Path) -> None:
    assert "example-decay" in run(tmp_path, "list", "kernels").stdout
    assert "example-causal-conv" in run(tmp_path, "list", "backbones").stdout


def test_sashimi_with_the_example_kernel_trains_generates_and_steps_like_it_convolves(
    tmp_path: Path,
) -> None:
    model = ["--model", "sashimi", "model.d_model=8", "model.n_layers=1", "model.pool=[2, 2]",
             "model.l_max=256", "model.kernel.name=example-decay",
             "model.kernel.d_state=4"]  # fmt: skip
    run(tmp_path, *model, *TONES, *TRAIN, "output.name=k", "--quiet")
    ckpt = tmp_path / "runs/k/checkpoints/last.pt"
    saved = torch.load(ckpt, weights_only=False)
    assert saved["config"]["model"]["kernel"]["name"] == "example-decay"
    assert any(k.endswith("kernel.log_lambda") for k in saved["model"])
    result = run(tmp_path, "generate", "--checkpoint", str(ckpt), "--output", "samples",
                 "generate.n_samples=2", "generate.l_sample=64", "--quiet")  # fmt: skip
    # The compiled step does not know this kernel: auto falls back to the eager one, and says why.
    assert "engine: eager (compiled: no fused step for the kernel " in result.stderr
    assert len(list((tmp_path / "samples").glob("*.wav"))) == 2
    # The numerics contract with a plugin's kernel: stepping equals the convolution.
    registry = Registry.from_plugin_manager(make_plugin_manager())
    lm = resolve_run_config(registry, base=saved["config"]).model.build().double().eval()
    lm.load_state_dict(saved["model"])
    x = torch.randint(0, 256, (2, 50))
    with torch.no_grad():
        expected = lm.logits(x)
        lm.setup_rnn()
        state, prev, steps = lm.default_state(2), torch.full((2,), lm.start_token), []
        for t in range(50):
            logits, state = lm.step(prev, state)
            steps.append(logits)
            prev = x[:, t]
    assert (torch.stack(steps, 1) - expected).abs().max().item() <= 1e-8


def test_the_generic_lm_over_the_example_backbone_trains_resumes_and_generates(
    tmp_path: Path,
) -> None:
    model = ["--model", "lm", "model.backbone.name=example-causal-conv",
             "model.backbone.d_model=8", "model.backbone.n_layers=2"]  # fmt: skip
    run(tmp_path, *model, *TONES, *TRAIN, "output.name=lm", "--quiet")
    run(tmp_path, "train", "--resume", "runs/lm", "train.max_steps=8", "--quiet")
    ckpt = tmp_path / "runs/lm/checkpoints/last.pt"
    saved = torch.load(ckpt, weights_only=False)
    assert saved["step"] == 8
    assert saved["config"]["model"]["backbone"]["name"] == "example-causal-conv"
    result = run(tmp_path, "generate", "--checkpoint", str(ckpt), "--output", "out",
                 "generate.n_samples=2", "generate.l_sample=40", "--quiet")  # fmt: skip
    assert "engine: eager" in result.stderr
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert len(manifest["clips"]) == 2
    compiled = run(tmp_path, "generate", "--checkpoint", str(ckpt), "--output", "c",
                   "--engine", "compiled", "--quiet", check=False)  # fmt: skip
    assert compiled.returncode == 2
    assert (
        "--engine compiled: BackboneLM over CausalConvBackbone supports only auto, eager"
        in compiled.stderr
    )


def test_a_dataset_without_what_the_runner_needs_is_named(tmp_path: Path) -> None:
    plugin = tmp_path / "listy.py"
    plugin.write_text(
        "from audio_core import DatasetSpec, hookimpl\n"
        "from audio_run_plugin_example.config import TonesConfig\n"
        "def build(config):\n    return [1, 2, 3]\n"
        "@hookimpl\ndef register_datasets():\n"
        "    yield DatasetSpec(name='listy', config_cls=TonesConfig, target='listy:build',"
        " summary='not a dataset')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    cmd = [str(Path(sys.executable).with_name("audio-run")), "--plugin", "listy", "--model",
           "wavenet", "--dataset", "listy", "--quiet"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "audio-run: error: dataset 'listy' built a list, which lacks split, sample_rate, "
        "sample_len, encoding; a dataset target must return an object with split, sample_rate, "
        "sample_len, encoding (see audio_core.protocols.AudioDataset)"
    )


@pytest.mark.parametrize("name", ["sashimi_sc09_tiny", "wavenet_sc09_tiny"])
def test_a_reference_checkpoint_imports_and_generates_with_every_engine(
    tmp_path: Path, name: str
) -> None:
    source = reference_dir(__file__, "s4", "tiny", f"{name}.pt")
    extra = [] if name.startswith("sashimi") else ["model.layers=3", "model.blocks=2"]
    result = run(tmp_path, "checkpoint", "import", str(source), "--output", "imported.pt",
                 "--check", *extra)  # fmt: skip
    assert "preset " + name.split("_")[0] + "-sc09 (inferred)" in result.stdout
    check = next(line for line in result.stdout.splitlines() if "check:" in line)
    assert float(check.split("differ by ")[1].split()[0]) <= 1e-4
    again = run(tmp_path, "checkpoint", "import", str(source), "--output", "imported.pt",
                check=False)  # fmt: skip
    assert again.returncode == 2
    assert "imported.pt already exists; pass --force" in again.stderr
    engines = ["auto", "eager"]
    if shutil.which("cc") or os.environ.get("AUDIO_MODELS_COMPILER_REQUIRED"):
        engines.append("compiled")  # SaShiMi's and WaveNet's fused C steps
    codes = {}
    for engine in engines:
        out = tmp_path / f"out-{engine}"
        run(tmp_path, "generate", "--checkpoint", "imported.pt", "--output", str(out),
            "--engine", engine, "generate.n_samples=2", "generate.l_sample=64",
            "--quiet")  # fmt: skip
        codes[engine] = torch.load(out / "codes.pt")
    assert all(torch.equal(codes["eager"], c) for c in codes.values())


def test_a_file_that_is_not_a_reference_checkpoint_is_one_line(tmp_path: Path) -> None:
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    result = run(tmp_path, "checkpoint", "import", "other.pt", "--output", "x.pt", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "audio-run: error: other.pt: not a reference SaShiMi, WaveNet, SampleRNN or DiffWave "
        "checkpoint (its keys start weight)"
    )
    (tmp_path / "junk.pt").write_bytes(b"junk")
    junk = run(tmp_path, "checkpoint", "import", "junk.pt", "--output", "x.pt", check=False)
    assert junk.returncode == 2
    assert junk.stderr.startswith("audio-run: error: junk.pt: not a plain state dict of tensors")
    assert not (tmp_path / "x.pt").exists()
