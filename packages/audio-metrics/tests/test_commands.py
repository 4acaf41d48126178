"""``audio-run classifier train|test`` and ``audio-run evaluate`` end to end, on the in-memory
``tones`` dataset of ``audio_metrics.testing`` (no dataset package needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audio_core.cli import main
from audio_metrics.testing import ToneConfig, build_tones, write_samples

PLUGIN = ["--plugin", "audio_metrics.testing"]
TRAIN = [
    *PLUGIN,
    "classifier",
    "train",
    "--dataset",
    "tones",
    "--preset",
    "small",
    "--epochs",
    "10",
    "--batch-size",
    "16",
    "--lr",
    "5e-3",
    "--quiet",
    "--device",
    "cpu",
    "classifier.widths=[8, 16, 32]",
]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clf") / "run"
    assert main([*TRAIN, "--output", str(out)]) == 0
    return out / "best.pt"


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """48 tones (12 per class) written as wavs, with made-up log-likelihoods."""
    data = build_tones(ToneConfig())
    split = data.splits["train"]
    clips = [split.audio(i) for i in range(48)]
    folder = tmp_path / "samples"
    write_samples(folder, clips, [-1000.0 - (37 * i) % 101 for i in range(len(clips))])
    return folder


def _evaluate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main([*PLUGIN, "evaluate", "--quiet", "--device", "cpu", "ndb.k=8", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_training_writes_checkpoints_and_history(classifier: Path) -> None:
    run = classifier.parent
    assert {p.name for p in run.iterdir()} >= {"best.pt", "last.pt", "history.jsonl", "test.txt"}
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == list(range(1, 11))
    assert max(h["val_acc"] for h in history) >= 0.9


def test_classifier_test_reports_accuracy_and_a_consistent_confusion_matrix(
    classifier: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main([*PLUGIN, "classifier", "test", str(classifier), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    matrix = report["confusion"]
    assert report["split"] == "test"
    assert report["accuracy"] > 0.9
    assert sum(map(sum, matrix)) == report["n"] == 16
    assert sum(matrix[i][i] for i in range(4)) / report["n"] == pytest.approx(report["accuracy"])
    assert main([*PLUGIN, "classifier", "test", str(classifier), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("test accuracy: ")
    assert lines[1] == "rows: true class, columns: predicted class"
    assert len(lines) == 3 + 4


def test_training_refuses_a_used_folder_without_force(
    classifier: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (classifier.parent / "best.pt").read_bytes()
    assert main([*TRAIN, "--output", str(classifier.parent)]) == 2
    err = capsys.readouterr().err
    assert f"{classifier.parent}: exists and is not empty; pass --force" in err
    assert (classifier.parent / "best.pt").read_bytes() == before


def test_evaluate_writes_metrics_and_reuses_cached_features(
    classifier: Path, samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache")]
    args = ["--samples", str(samples), "--classifier", str(classifier), *cache]
    status, out, _ = _evaluate(capsys, *args)
    assert status == 0, out
    first = json.loads((samples / "metrics.json").read_text())
    row = first["rows"]["samples"]
    assert set(row) >= {"n", "fid", "is", "mis", "am", "ndb", "ndb_k"}
    assert row["n"] == 48
    assert row["is"] > 1.5  # real tones spread over 4 classes (a soft 10-epoch classifier)
    assert first["features_from_cache"] == {"train": False, "samples": False}
    assert first["thresholding"] is False
    assert first["reference"] == {"dataset": "tones", "split": "train", "n": 80}
    assert len(first["classifier"]["sha256"]) == 64
    assert first["directions"]["fid"] == "lower"
    assert first["directions"]["is"] == "higher"
    assert (samples / "class_distribution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(+) higher is better" in out

    status, _, err = _evaluate(capsys, *args)
    assert status == 2
    assert "metrics.json: exists; pass --force" in err

    status, _, err = _evaluate(capsys, *args, "--force")
    assert status == 0
    second = json.loads((samples / "metrics.json").read_text())
    assert second["features_from_cache"] == {"train": True, "samples": True}
    assert second["rows"] == first["rows"]
    assert "features reused from the cache" in err


def test_evaluate_thresholding_fixed_and_tuned(
    classifier: Path, samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--samples", str(samples), "--classifier", str(classifier), "--no-cache", "--force"]
    status, out, err = _evaluate(capsys, *base, "--threshold-fixed", "0.4", "0.95")
    assert status == 0, err
    report = json.loads((samples / "metrics.json").read_text())
    cut = report["thresholding"]
    assert (cut["lo"], cut["hi"], cut["tuned"]) == (0.4, 0.95, False)
    assert report["rows"]["samples (thresholded)"]["n"] == cut["n_kept"] < 24
    assert "thresholding: kept log-likelihoods in [0.40, 0.95]" in out

    status, out, _ = _evaluate(capsys, *base, "--threshold", "--threshold-metric", "mis")
    assert status == 0
    cut = json.loads((samples / "metrics.json").read_text())["thresholding"]
    assert cut["tuned"]
    assert cut["metric"] == "mis"
    assert len(cut["search"]) > 1


def test_dataset_metrics_rows(
    classifier: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "dm"
    status, _, _ = _evaluate(
        capsys,
        "--classifier",
        str(classifier),
        "--dataset-metrics",
        "--output",
        str(out_dir),
        "--no-cache",
        "is.splits=2",
    )
    assert status == 0
    rows = json.loads((out_dir / "metrics.json").read_text())["rows"]
    assert set(rows) == {"train", "test"}
    assert rows["train"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert rows["train"]["ndb"] == 0
    assert "is_std" in rows["test"]
    assert rows["test"]["n"] == 16


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--classifier", "nothere.pt", "--samples", "."], "nothere.pt: no such classifier"),
        (["--classifier", "x.pt"], "pass --samples DIR, --dataset-metrics, or both"),
        (["--classifier", "x.pt", "--dataset-metrics", "--threshold"], "--threshold needs"),
        (["--classifier", "x.pt", "--samples", ".", "ndb.kk=3"], "did you mean 'k'"),
        (["--classifier", "x.pt", "--samples", ".", "fdi.eps=1"], "must start with one of"),
        (
            ["--classifier", "x.pt", "--samples", ".", "--threshold-fixed", "0.9", "0.4"],
            "--threshold-fixed LO HI: need 0 <= LO < HI <= 1; got 0.9 0.4",
        ),
        (
            ["--classifier", "x.pt", "--samples", ".", "--threshold", "--threshold-metric", "x"],
            "--threshold-metric 'x': no metric reports it (known: am, fid, is",
        ),
    ],
)
def test_evaluate_usage_errors_are_one_line_with_status_2(
    args: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.wav").write_bytes(b"")
    status, _, err = _evaluate(capsys, *args)
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_an_unknown_reference_dataset_is_one_line(
    classifier: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _evaluate(
        capsys, "--samples", str(samples), "--classifier", str(classifier), "--dataset", "nope"
    )
    assert status == 2
    assert "--dataset: unknown dataset 'nope' (installed: " in err
    assert len(err.strip().splitlines()) == 1


def test_thresholding_needs_the_manifest(
    classifier: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (samples / "manifest.json").unlink()
    status, _, err = _evaluate(
        capsys,
        "--samples",
        str(samples),
        "--classifier",
        str(classifier),
        "--threshold",
        "--no-cache",
    )
    assert status == 2
    assert f"{samples / 'manifest.json'}: not found" in err


def test_a_checkpoint_that_is_not_a_classifier_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    bad = tmp_path / "model.pt"
    torch.save({"model": {}}, bad)
    status, _, err = _evaluate(capsys, "--classifier", str(bad), "--dataset-metrics")
    assert status == 2
    assert f"{bad}: not an SC09 classifier checkpoint" in err


# -- bad input: one line each, nothing written ----------------------------------------------
def test_non_finite_samples_are_refused_naming_the_file(
    classifier: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    import soundfile as sf

    bad = samples / "zz_nan.wav"
    sf.write(bad, np.full(16000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    status, _, err = _evaluate(capsys, "--samples", str(samples), "--classifier", str(classifier),
                               "--no-cache")  # fmt: skip
    assert status == 2
    assert err == (
        f"audio-run: error: {bad}: holds non-finite samples (NaN or inf); no metric applies\n"
    )
    assert not (samples / "metrics.json").exists()


def test_a_cache_dir_that_is_a_file_is_one_line(
    classifier: Path, samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "cache-file"
    blocker.write_text("")
    status, _, err = _evaluate(capsys, "--samples", str(samples), "--classifier", str(classifier),
                               "--cache-dir", str(blocker))  # fmt: skip
    assert status == 2
    assert err == (
        f"audio-run: error: --cache-dir {blocker}: not a folder (pass a folder, or --no-cache)\n"
    )


def test_an_output_that_cannot_be_written_is_one_line_with_status_1(
    classifier: Path, samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("keep")
    status, _, err = _evaluate(capsys, "--samples", str(samples), "--classifier", str(classifier),
                               "--no-cache", "--output", str(blocker / "out"))  # fmt: skip
    assert status == 1
    assert err == f"audio-run: error: {blocker / 'out'}: Not a directory (ENOTDIR)\n"
    assert blocker.read_text() == "keep"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.pop("dataset"), "the classifier checkpoint lacks dataset"),
        (lambda p: p["config"].update(widths=[4, 4]), "its weights do not match its config"),
        (lambda p: p["config"].update(widths="wide"), "its classifier config is invalid: "),
        (lambda p: p["model"].popitem(), "its weights do not match its config (1 missing"),
    ],
)
def test_a_classifier_checkpoint_made_by_hand_says_what_is_wrong(
    classifier: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage, message: str
) -> None:
    import torch

    payload = torch.load(classifier, map_location="cpu", weights_only=False)
    damage(payload)
    bad = tmp_path / "hand.pt"
    torch.save(payload, bad)
    status, _, err = _evaluate(capsys, "--classifier", str(bad), "--dataset-metrics")
    assert status == 2
    assert err.startswith(f"audio-run: error: {bad}: {message}")
    assert len(err.strip().splitlines()) == 1


def test_evaluate_with_the_reference_classifier_file_and_save_probs(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    from audio_core.testing import reference_dir

    released = reference_dir(__file__, "classifier", "resnext_tiny.pth")
    probs_dir = tmp_path / "probs"
    args = ["--samples", str(samples), "--classifier", str(released), "--dataset", "tones",
            "--no-cache", "--save-probs", str(probs_dir), "is.variant=reference",
            "mis.variant=reference", "ndb.seed=0"]  # fmt: skip
    status, _, err = _evaluate(capsys, *args)
    assert status == 0, err
    report = json.loads((samples / "metrics.json").read_text())
    assert set(report["rows"]["samples"]) >= {"fid", "is", "mis", "am", "ndb"}
    assert report["probs_file"] == str(probs_dir / "samples.npy")
    probs = np.load(probs_dir / "samples.npy")
    assert probs.shape == (48, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    status, _, err = _evaluate(capsys, *args)
    assert status == 2
    assert "metrics.json: exists; pass --force" in err
    status, _, err = _evaluate(capsys, *args, "--force")
    assert status == 0, err
    status, _, err = _evaluate(capsys, "--classifier", str(released), "--dataset-metrics",
                               "--dataset", "tones", "--save-probs", str(probs_dir))  # fmt: skip
    assert status == 2
    assert "--save-probs needs --samples DIR" in err
