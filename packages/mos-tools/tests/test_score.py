"""score: a simulated MTurk study round trip, and every malformed input named by row."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from mos_tools.cli import main
from mos_tools.errors import MosError
from mos_tools.hits import build_hits, parse_gold
from mos_tools.score import Rules, merge_manifests, read_results, summarize
from mos_tools.testing import write_wav

TRUE = {"real": 4.3, "sashimi": 3.6, "wavenet": 2.8, "noise": 1.0}


def study(tmp_path: Path, layout: str = "mixed") -> tuple[dict, Path]:
    for method in TRUE:
        for i in range(8):
            write_wav(tmp_path / "in" / method / f"c{i}.wav")
    (manifest,) = build_hits(condition="music", input_dir=tmp_path / "in", methods=list(TRUE),
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
    assert list(rows[0]) == ["method", "question", "mos", "std", "ci95_t_low", "ci95_t_high",
                             "ci95_boot_low", "ci95_boot_high", "ci95_normal_low",
                             "ci95_normal_high", "n_ratings", "n_raters",
                             "agreement_alpha"]  # fmt: skip


def test_speech_answers_count_per_hit_once_and_digits_get_kappa(tmp_path: Path) -> None:
    for method in ("real", "gen"):
        for i in range(4):
            write_wav(tmp_path / "in" / method / f"c{i}.wav")
    with (tmp_path / "in" / "labels.csv").open("w") as handle:
        handle.write("method,file,label,confidence\n")
        for method in ("real", "gen"):
            for i in range(4):
                handle.write(f"{method},c{i}.wav,{i},0.9\n")
    (manifest,) = build_hits(condition="speech", input_dir=tmp_path / "in",
                             methods=["real", "gen"], batch_size=4, output_dir=tmp_path / "out",
                             seed=2, hit_layout="per-method", form="speech")  # fmt: skip
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


# -- the reference's studies and their result files ---------------------------------------------
def _reference_study(tmp_path: Path) -> tuple[dict, Path]:
    for method in ("wavenet", "sashimi", "test"):
        for i in range(6):
            write_wav(tmp_path / "in" / method / f"{i}.wav")
    (manifest,) = build_hits(condition="ytm", input_dir=tmp_path / "in", style="reference",
                             methods=["wavenet", "sashimi", "test"], batch_size=1,
                             hit_layout="all-methods", output_dir=tmp_path / "final",
                             url_template="https://b.test/{}/{}/{}.wav",
                             gold=[parse_gold("test/4.wav:quality<=2,musicality<=2")])  # fmt: skip
    return manifest, tmp_path / "final" / "ytm" / "urls.csv"


def _reference_results(manifest: dict, urls: Path, out: Path, liars: int = 0) -> Path:
    """What MTurk exports for the reference's template: Input.recording_<i>_url from 0 and
    Answer.recording_<i>_<question>. Honest raters rate by method; liars rate gold 5."""
    lines = urls.read_text().split("\n")
    header, hits = lines[0].split(","), [line.split(",") for line in lines[1:]]
    by_url = {c["url"]: c for c in manifest["clips"].values()}
    value = {"wavenet": 2, "sashimi": 4, "test": 5}
    rows = []
    for h, hit in enumerate(hits):
        for w in range(4 + liars):
            row = {"HITId": f"H{h}", "AssignmentId": f"A{h}-{w}", "WorkerId": f"W{w}",
                   "AssignmentStatus": "Approved"}  # fmt: skip
            for i, (column, url) in enumerate(zip(header, hit, strict=True)):
                row[f"Input.{column}"] = url
                clip = by_url[url]
                score = value[clip["method"]]
                if clip["method"] == "test" and clip["file"] == "4.wav" and w < 4:
                    score = 1  # the gold clip is noise: honest raters say so
                row[f"Answer.recording_{i}_quality"] = str(score)
                row[f"Answer.recording_{i}_musicality"] = str(score)
            rows.append(row)
    path = out / "Batch_9_batch_results.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_the_reference_field_names_are_scored_with_per_file_gold(tmp_path: Path) -> None:
    manifest, urls = _reference_study(tmp_path)
    results = _reference_results(manifest, urls, tmp_path, liars=1)
    ratings, digits = read_results([results], manifest)
    summary = summarize(ratings, digits, manifest, Rules(gold_failures=0, outlier_z=0))
    assert summary["dropped_raters"] == {"W4": "failed 2 gold ratings (allowed: 0)"}
    mos = {(r["method"], r["question"]): r["mos"] for r in summary["scores"]}
    assert mos == {(m, q): v for m, v in (("wavenet", 2), ("sashimi", 4), ("test", 5))
                   for q in ("musicality", "quality")}  # fmt: skip  # gold 4.wav left out
    test_row = next(r for r in summary["scores"] if r["method"] == "test")
    assert test_row["n_ratings"] == 5 * 4  # 6 files but the gold one, 4 honest raters


def test_rejected_assignments_are_left_out(tmp_path: Path) -> None:
    manifest, urls = _reference_study(tmp_path)
    results = _reference_results(manifest, urls, tmp_path)
    with results.open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["WorkerId"] == "W0":
            row["AssignmentStatus"] = "Rejected"
            row["Answer.recording_0_quality"] = "1"
    with results.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ratings, _ = read_results([results], manifest)
    assert {r.worker for r in ratings} == {"W1", "W2", "W3"}


def test_the_normal_interval_is_the_references_formula(tmp_path: Path) -> None:
    import math
    import statistics

    from mos_tools.stats import normal_interval

    values = [1.0, 2.0, 2.0, 3.0, 5.0, 4.0, 4.0]
    lo, hi = normal_interval(values)
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values))
    assert (lo, hi) == pytest.approx(
        (statistics.fmean(values) - half, statistics.fmean(values) + half)
    )


def test_several_manifests_are_scored_together(tmp_path: Path) -> None:
    for method, n in (("a", 4), ("b", 6)):
        for i in range(n):
            write_wav(tmp_path / "in" / method / f"{method}{i}.wav")
    manifests = build_hits(condition="sc", input_dir=tmp_path / "in", style="reference",
                           methods=["a", "b"], batch_size=2, hit_layout="per-method",
                           output_dir=tmp_path / "final")  # fmt: skip
    paths = [tmp_path / "final" / m["condition"] / "manifest.json" for m in manifests]
    merged = merge_manifests(paths)
    assert len(merged["clips"]) == 10  # the same ids in both folders, told apart
    rows = []
    for m in manifests:
        lines = (tmp_path / "final" / m["condition"] / "urls.csv").read_text().split("\n")
        for h, line in enumerate(lines[1:]):
            row = {"HITId": f"{m['condition']}{h}", "AssignmentId": f"{m['condition']}{h}",
                   "WorkerId": "W"}  # fmt: skip
            for i, url in enumerate(line.split(",")):
                row[f"Input.recording_{i}_url"] = url
                row[f"Answer.recording_{i}_quality"] = "3" if m["methods"] == ["a"] else "4"
            rows.append(row)
    results = tmp_path / "r.csv"
    with results.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["score", "--results", str(results), "--manifest", *map(str, paths),
                 "--outlier-z", "0"]) == 0  # fmt: skip
    ratings, _ = read_results([results], merged)
    assert sorted({(r.method, r.value) for r in ratings}) == [("a", 3.0), ("b", 4.0)]
