"""The SC09 evaluation protocol end to end: the classifier trained on the built-in sc09-synth,
samples from a (tiny) SaShiMi through `audio-run generate`, then `audio-run evaluate`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

AUDIO_RUN = str(Path(sys.executable).with_name("audio-run"))


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [AUDIO_RUN, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("protocol")


@pytest.fixture(scope="module")
def classifier(work: Path) -> Path:
    run(work, "data", "make", "sc09-synth", "--root", "synth", "--quiet")
    run(work, "classifier", "train", "--dataset", "sc09-synth", "dataset.root=synth",
        "--preset", "small", "--epochs", "8", "--batch-size", "16", "--lr", "5e-3",
        "--output", "clf", "--device", "cpu", "--quiet")  # fmt: skip
    return work / "clf" / "best.pt"


@pytest.fixture(scope="module")
def samples(work: Path) -> Path:
    tiny = ["--model", "sashimi", "--dataset", "sc09-synth", "model.d_model=8",
            "model.n_layers=1", "model.pool=[2, 2]", "model.kernel.name=s4d",
            "model.kernel.d_state=8",
            "model.l_max=2000", "dataset.root=tiny-synth", "dataset.per_class=10",
            "dataset.sample_len=2000", "train.batch_size=4", "train.max_steps=4",
            "output.name=tiny", "--quiet"]  # fmt: skip
    run(work, *tiny)
    run(work, "generate", "--checkpoint", "runs/tiny/checkpoints/last.pt", "--output",
        "gen", "generate.n_samples=48", "generate.l_sample=2000", "generate.n_batch=48",
        "--quiet")  # fmt: skip
    return work / "gen"


def test_the_classifier_reaches_90_percent_on_sc09_synth(work: Path, classifier: Path) -> None:
    out = run(work, "classifier", "test", str(classifier), "--json", "--device", "cpu").stdout
    report = json.loads(out)
    assert report["dataset"] == "sc09-synth"
    assert report["n"] == 100
    assert report["accuracy"] > 0.9


def test_evaluate_generated_samples_with_thresholding_and_the_cache(
    work: Path, classifier: Path, samples: Path
) -> None:
    args = ["evaluate", "--samples", str(samples), "--classifier", str(classifier),
            "--threshold", "--cache-dir", "cache", "--device", "cpu", "ndb.k=10",
            "--quiet"]  # fmt: skip
    first = run(work, *args)
    report = json.loads((samples / "metrics.json").read_text())
    assert report["features_from_cache"] == {"train": False, "samples": False}
    assert report["reference"]["dataset"] == "sc09-synth"
    assert report["reference"]["n"] == 800
    cut = report["thresholding"]
    assert cut["tuned"]
    assert cut["n_tune"] + cut["n_eval"] == 48
    rows = report["rows"]
    assert set(rows) == {"samples (all)", "samples (thresholded)"}
    for row in rows.values():
        for key in ("fid", "is", "mis", "am", "ndb_k"):
            assert row[key] is not None
    assert "fid (-)" in first.stdout
    assert (samples / "class_distribution.png").is_file()

    second = run(work, *args, "--force")
    again = json.loads((samples / "metrics.json").read_text())
    assert again["features_from_cache"] == {"train": True, "samples": True}
    assert again["rows"] == rows
    assert "features reused from the cache for train, samples" in second.stderr


def test_the_reference_classifier_file_evaluates_and_feeds_a_listening_test(
    work: Path, samples: Path
) -> None:
    """The released classifier's format (tiny, random weights), end to end: evaluate with the
    reference's metric variants and thresholding, save the probabilities, let mos-tools keep
    the most confident samples and build HITs from them."""
    from audio_core.testing import reference_dir

    released = reference_dir(__file__, "classifier", "resnext_tiny.pth")
    run(work, "evaluate", "--samples", str(samples), "--classifier", str(released),
        "--dataset", "sc09-synth", "dataset.root=synth", "--threshold-fixed", "0.4", "0.95",
        "--save-probs", "probs", "--output", "ref-eval", "--device", "cpu", "--no-cache",
        "is.variant=reference", "mis.variant=reference", "ndb.seed=0", "ndb.k=10",
        "--quiet")  # fmt: skip
    report = json.loads((work / "ref-eval" / "metrics.json").read_text())
    assert report["thresholding"]["tuned"] is False
    assert report["rows"]["samples (thresholded)"]["is"] is not None
    assert report["probs_file"].endswith("gen.npy")
    mos = str(Path(sys.executable).with_name("mos-tools"))
    subprocess.run(
        [mos, "select-confident", "--probs", "probs", "--samples", str(samples.parent),
         "--methods", "gen", "--top-k", "2", "--out", "selected"],
        cwd=work, check=True, capture_output=True,
    )  # fmt: skip
    kept = sorted((work / "selected" / "gen").glob("*.wav"))
    assert kept
    batch = min(len(kept), 2) if len(kept) % 2 == 0 else 1
    subprocess.run(
        [mos, "build-hits", "--condition", "sc09", "--input-dir", "selected", "--methods", "gen",
         "--batch-size", str(batch), "--hit-layout", "per-method", "--form", "speech",
         "--output-dir", "hits", "--seed", "0"],
        cwd=work, check=True, capture_output=True,
    )  # fmt: skip
    manifest = json.loads((work / "hits" / "sc09" / "manifest.json").read_text())
    assert len(manifest["clips"]) == len(kept)
    assert all(c["label"] is not None for c in manifest["clips"].values())


def test_diffwave_samples_are_scored_without_likelihoods(work: Path, classifier: Path) -> None:
    """The non-autoregressive protocol: a tiny SaShiMi-DiffWave's samples get every metric,
    no thresholding, and ``--threshold`` says why it does not apply."""
    run(work, "--model", "diffwave", "--dataset", "sc09-synth", "dataset.root=synth",
        "model.T=10", "model.step_embed=[8, 16, 16]", "model.backbone.d_model=4",
        "model.backbone.n_layers=1", "model.backbone.pool=[2, 2]", "model.backbone.l_max=2000",
        "model.backbone.kernel.d_state=4", "dataset.sample_len=2000", "train.batch_size=4",
        "train.max_steps=2", "output.name=dw", "--quiet")  # fmt: skip
    run(work, "generate", "--checkpoint", "runs/dw/checkpoints/last.pt", "--output", "dw-gen",
        "generate.n_samples=12", "generate.n_batch=12", "generate.l_sample=2000",
        "--quiet")  # fmt: skip
    args = ["evaluate", "--samples", "dw-gen", "--classifier", str(classifier), "--device",
            "cpu", "--no-cache", "ndb.k=4", "--quiet"]  # fmt: skip
    run(work, *args)
    report = json.loads((work / "dw-gen" / "metrics.json").read_text())
    assert report["thresholding"] is False
    assert set(report["rows"]) == {"samples"}
    assert all(report["rows"]["samples"][k] is not None for k in ("fid", "is", "mis", "am"))
    refused = subprocess.run(
        [AUDIO_RUN, *args, "--threshold", "--force"], cwd=work, capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert "no likelihoods (a diffusion model's); evaluate them without --threshold" in (
        refused.stderr
    )
