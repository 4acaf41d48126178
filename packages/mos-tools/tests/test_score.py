"""score: a simulated MTurk study round trip, and every malformed input named by row."""

from __future__ import annotations

import csv
import json
import random
import wave
from pathlib import Path

import pytest

from mos_tools.cli import main
from mos_tools.errors import MosError
from mos_tools.hits import build_hits
from mos_tools.score import Rules, read_results, summarize

TRUE = {"real": 4.3, "sashimi": 3.6, "wavenet": 2.8, "noise": 1.0}


def write_wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(b"\x00\x00" * 160)


def study(tmp_path: Path, layout: str = "mixed") -> tuple[dict, Path]:
    for method in TRUE:
        for i in range(8):
            write_wav(tmp_path / "in" / method / f"c{i}.wav")
    manifest = build_hits(condition="music", input_dir=tmp_path / "in", methods=list(TRUE),
                          batch_size=4, output_dir=tmp_path / "out", seed=5,
                          gold_method="noise", hit_layout=layout)  # fmt: skip  # type: ignore[arg-type]
    return manifest, tmp_path / "out" / "music" / "urls.csv"


def simulate(manifest: dict, urls: Path, out: Path, *, raters: int = 12, per_hit: int = 5) -> Path:
    """Results as MTurk exports them: good raters score true + noise; rater BAD1 answers at
    random (and rates the gold noise clips highly), BAD2 is 2 points harsher than everyone."""
    rng = random.Random(0)
    with urls.open() as handle:
        hits = list(csv.reader(handle))[1:]
    by_url = {c["url"]: c for c in manifest["clips"].values()}
    workers = [f"W{i:02d}" for i in range(raters)]
    rows = []
    for h, hit in enumerate(hits):
        for worker in rng.sample(workers, per_hit) + (["BAD1", "BAD2"] if h % 2 == 0 else []):
            row = {"HITId": f"H{h}", "AssignmentId": f"A{h}-{worker}", "WorkerId": worker}
            for i, url in enumerate(hit, 1):
                row[f"Input.url_{i}"] = url
                true = TRUE[by_url[url]["method"]]
                for question in ("quality", "musicality"):
                    if worker == "BAD1":
                        value = rng.randint(3, 5)
                    else:
                        value = round(true + rng.gauss(0, 0.6) - (2 if worker == "BAD2" else 0))
                    row[f"Answer.{question}_{i}"] = str(min(5, max(1, value)))
            rows.append(row)
    path = out / "Batch_1_batch_results.csv"
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_simulated_study_recovers_the_truth_and_flags_bad_raters(tmp_path: Path) -> None:
    manifest, urls = study(tmp_path)
    results = simulate(manifest, urls, tmp_path)
    ratings, digits = read_results([results], manifest)
    summary = summarize(ratings, digits, manifest, Rules(gold_max=2, outlier_z=3.5))
    assert set(summary["dropped_raters"]) == {"BAD1", "BAD2"}
    assert "gold" in summary["dropped_raters"]["BAD1"]
    quality = {r["method"]: r for r in summary["scores"] if r["question"] == "quality"}
    assert set(quality) == {"real", "sashimi", "wavenet"}  # gold clips are not scored
    order = sorted(quality, key=lambda m: -quality[m]["mos"])
    assert order == ["real", "sashimi", "wavenet"]
    for method, row in quality.items():
        lo, hi = row["ci95_t"]
        assert lo <= TRUE[method] + 0.1, (method, row)  # the truth (up to rounding) inside
        assert TRUE[method] - 0.1 <= hi, (method, row)
        assert row["ci95_bootstrap"][0] < row["mos"] < row["ci95_bootstrap"][1]
        assert row["n_raters"] <= 12
    assert summary["agreement_alpha"]["quality"] > 0.3  # raters agree across methods
    unfiltered = summarize(ratings, digits, manifest, Rules(outlier_z=0))
    assert unfiltered["dropped_raters"] == {}


def test_the_cli_writes_table_csv_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, urls = study(tmp_path)
    results = simulate(manifest, urls, tmp_path)
    manifest_path = tmp_path / "out" / "music" / "manifest.json"
    assert main(["score", "--results", str(results), "--manifest", str(manifest_path),
                 "--gold-max", "2", "--out", str(tmp_path / "scores")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["method", "question", "MOS"]
    assert "dropped rater BAD1" in out
    data = json.loads((tmp_path / "scores" / "scores.json").read_text())
    with (tmp_path / "scores" / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(data["scores"]) == 6  # 3 methods x 2 questions
    assert set(rows[0]) == {"method", "question", "mos", "ci95_t_low", "ci95_t_high",
                            "ci95_boot_low", "ci95_boot_high", "n_ratings", "n_raters",
                            "agreement_alpha"}  # fmt: skip


def test_speech_answers_count_per_hit_once_and_digits_get_kappa(tmp_path: Path) -> None:
    for method in ("real", "gen"):
        for i in range(4):
            write_wav(tmp_path / "in" / method / f"c{i}.wav")
    with (tmp_path / "in" / "labels.csv").open("w") as handle:
        handle.write("method,file,label,confidence\n")
        for method in ("real", "gen"):
            for i in range(4):
                handle.write(f"{method},c{i}.wav,{i},0.9\n")
    manifest = build_hits(condition="speech", input_dir=tmp_path / "in", methods=["real", "gen"],
                          batch_size=4, output_dir=tmp_path / "out", seed=2,
                          hit_layout="per-method")  # fmt: skip
    with (tmp_path / "out" / "speech" / "urls.csv").open() as handle:
        hits = list(csv.reader(handle))[1:]
    rows = []
    for h, hit in enumerate(hits):
        for w in range(3):
            row = {"HITId": f"H{h}", "AssignmentId": f"A{h}{w}", "WorkerId": f"W{w}"}
            method = manifest["clips"][hit[0].rsplit("/", 1)[1][:-4]]["method"]
            for i, url in enumerate(hit, 1):
                uid = url.rsplit("/", 1)[1][:-4]
                label = manifest["clips"][uid]["label"]
                row[f"Input.url_{i}"] = url
                heard = label if method == "real" or i % 2 else (label + 1) % 10
                row[f"Answer.digit_{i}"] = str(heard)
                row[f"Answer.intelligibility_{i}"] = "4"
            row["Answer.quality"] = "5" if method == "real" else "3"
            row["Answer.diversity"] = "4"
            rows.append(row)
    path = tmp_path / "results.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ratings, digits = read_results([path], manifest)
    summary = summarize(ratings, digits, manifest, Rules(outlier_z=0))
    quality = {r["method"]: r for r in summary["scores"] if r["question"] == "quality"}
    assert quality["real"]["n_ratings"] == 3  # one HIT x 3 assignments, not x 4 clips
    assert quality["real"]["mos"] == 5.0
    digit = {d["method"]: d for d in summary["digits"]}
    assert digit["real"]["accuracy"] == 1.0
    assert digit["real"]["cohen_kappa"] == 1.0
    assert digit["gen"]["accuracy"] == 0.5


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda rows: [{k: v for k, v in r.items() if k != "WorkerId"} for r in rows],
            r"missing column WorkerId",
        ),
        (
            lambda rows: [rows[0] | {"Answer.quality_1": "good"}, *rows[1:]],
            r":2: Answer.quality_1 is 'good', not a number",
        ),
        (
            lambda rows: [rows[0] | {"Answer.quality_1": "9"}, *rows[1:]],
            r":2: Answer.quality_1 is 9, outside the 1-5 scale",
        ),
        (lambda rows: [rows[0], rows[0]], r":3: duplicate assignment .* \(first at .*:2\)"),
        (
            lambda rows: [rows[0] | {"Input.url_1": "https://x/y.wav"}],
            r":2: Input.url_1 'https://x/y.wav' is not in the manifest",
        ),
        (lambda rows: [rows[0] | {"Answer.musicality_2": ""}], r":2: Answer.musicality_2 is empty"),
    ],
)
def test_malformed_results_name_the_row(tmp_path: Path, mutate: object, message: str) -> None:
    manifest, urls = study(tmp_path)
    results = simulate(manifest, urls, tmp_path, raters=3, per_hit=2)
    with results.open() as handle:
        rows = list(csv.DictReader(handle))
    rows = mutate(rows)  # type: ignore[operator]
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(MosError, match=message):
        read_results([bad], manifest)
