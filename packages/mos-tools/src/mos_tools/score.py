"""``score``: MOS with rater filtering and confidence intervals from MTurk result CSVs.

Reads the ``Batch_*_batch_results.csv`` files MTurk exports (``HITId``, ``AssignmentId``,
``WorkerId``, ``Input.url_i``, ``Answer.*``) and the ``manifest.json`` of ``build-hits``.
Per-recording answers are ``Answer.<question>_<i>`` (the recording at ``Input.url_i``);
per-HIT answers are ``Answer.<question>`` and count once per assignment. ``digit`` answers
are compared with the classifier's label; every other answer is a 1-5 rating.

Raters are dropped when they fail gold items (``gold_max``: gold clips must be rated at most
this, e.g. noise; ``gold_min``: at least this, e.g. real recordings; ``gold_failures`` allowed)
or when their ratings are outliers: the mean difference between their ratings and the other
raters' mean for the same clips, as a robust z-score (median / MAD) beyond ``outlier_z``.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import statistics
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MosError
from .stats import bootstrap_interval, cohen_kappa, krippendorff_alpha_interval, t_interval

_CLIP_ANSWER = re.compile(r"^Answer\.(?P<q>[A-Za-z]+)_(?P<i>\d+)$")
_HIT_ANSWER = re.compile(r"^Answer\.(?P<q>[A-Za-z]+)$")
REQUIRED = ("HITId", "AssignmentId", "WorkerId")


@dataclass(frozen=True)
class Rating:
    worker: str
    hit: str
    method: str
    question: str
    value: float
    uid: str  # "" for per-HIT answers


@dataclass(frozen=True)
class Rules:
    gold_max: float | None = None
    gold_min: float | None = None
    gold_failures: int = 0
    outlier_z: float = 3.5
    seed: int = 0


def read_results(
    paths: Sequence[Path], manifest: dict[str, Any]
) -> tuple[list[Rating], list[tuple[str, str, int, int]]]:
    """Ratings and digit answers ``(worker, uid, heard, label)`` from result CSVs."""
    clips = manifest["clips"]
    by_url = {c["url"]: uid for uid, c in clips.items()}
    ratings: list[Rating] = []
    digits: list[tuple[str, str, int, int]] = []
    seen: dict[str, str] = {}
    for path in paths:
        if not path.is_file():
            raise MosError(f"{path}: no such results file")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED if c not in header]
            if missing or not any(h.startswith("Input.url_") for h in header):
                what = ", ".join(missing) if missing else "Input.url_1"
                raise MosError(f"{path}: missing column {what}; is this an MTurk results CSV?")
            answers = [h for h in header if h.startswith("Answer.")]
            if not answers:
                raise MosError(f"{path}: no Answer.* columns")
            for row_number, row in enumerate(reader, 2):
                where = f"{path}:{row_number}"
                assignment = row["AssignmentId"]
                if assignment in seen:
                    raise MosError(
                        f"{where}: duplicate assignment {assignment} (first at {seen[assignment]})"
                    )
                seen[assignment] = where
                worker, hit = row["WorkerId"], row["HITId"]
                uids: dict[int, str] = {}
                for key, url in row.items():
                    if key and key.startswith("Input.url_"):
                        if url not in by_url:
                            raise MosError(f"{where}: {key} {url!r} is not in the manifest")
                        uids[int(key.rsplit("_", 1)[1])] = by_url[url]
                hit_methods = {clips[u]["method"] for u in uids.values()}
                for key in answers:
                    text = (row.get(key) or "").strip()
                    if text == "":
                        raise MosError(f"{where}: {key} is empty")
                    try:
                        value = float(text)
                    except ValueError:
                        raise MosError(f"{where}: {key} is {text!r}, not a number") from None
                    clip = _CLIP_ANSWER.match(key)
                    if clip:
                        question, index = clip["q"], int(clip["i"])
                        if index not in uids:
                            raise MosError(f"{where}: {key} has no Input.url_{index}")
                        uid = uids[index]
                        if question == "digit":
                            label = clips[uid].get("label")
                            if label is not None:
                                digits.append((worker, uid, int(value), int(label)))
                            continue
                        _check_scale(value, where, key)
                        ratings.append(
                            Rating(worker, hit, clips[uid]["method"], question, value, uid)
                        )
                    elif _HIT_ANSWER.match(key):
                        if len(hit_methods) != 1:
                            raise MosError(
                                f"{where}: per-HIT answer {key} in a HIT with several methods; "
                                "build such studies with --hit-layout per-method"
                            )
                        _check_scale(value, where, key)
                        question = key.split(".", 1)[1]
                        method = next(iter(hit_methods))
                        ratings.append(Rating(worker, hit, method, question, value, ""))
    return ratings, digits


def _check_scale(value: float, where: str, key: str) -> None:
    if not 1 <= value <= 5:
        raise MosError(f"{where}: {key} is {value:g}, outside the 1-5 scale")


def flag_raters(ratings: list[Rating], manifest: dict[str, Any], rules: Rules) -> dict[str, str]:
    """Worker -> why they are dropped."""
    flagged: dict[str, str] = {}
    gold = set(manifest.get("gold", []))
    if gold and (rules.gold_max is not None or rules.gold_min is not None):
        failures: dict[str, int] = defaultdict(int)
        for r in ratings:
            if r.uid in gold and (
                (rules.gold_max is not None and r.value > rules.gold_max)
                or (rules.gold_min is not None and r.value < rules.gold_min)
            ):
                failures[r.worker] += 1
        for worker, count in failures.items():
            if count > rules.gold_failures:
                flagged[worker] = f"failed {count} gold ratings"
    if rules.outlier_z > 0:
        per_item: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
        for r in ratings:
            if r.uid and r.worker not in flagged:
                per_item[(r.uid, r.question)].append((r.worker, r.value))
        diffs: dict[str, list[float]] = defaultdict(list)
        for values in per_item.values():
            if len(values) < 2:
                continue
            total = sum(v for _, v in values)
            for worker, v in values:
                diffs[worker].append(v - (total - v) / (len(values) - 1))
        means = {w: statistics.fmean(d) for w, d in diffs.items()}
        if len(means) >= 3:
            centre = statistics.median(means.values())
            mad = statistics.median(abs(m - centre) for m in means.values()) * 1.4826
            for worker, m in means.items():
                z = (m - centre) / mad if mad > 0 else 0.0
                if abs(z) > rules.outlier_z:
                    flagged[worker] = f"outlier (robust z {z:+.1f} of their mean deviation)"
    return flagged


def summarize(
    ratings: list[Rating],
    digits: list[tuple[str, str, int, int]],
    manifest: dict[str, Any],
    rules: Rules,
) -> dict[str, Any]:
    flagged = flag_raters(ratings, manifest, rules)
    gold = set(manifest.get("gold", []))
    kept = [r for r in ratings if r.worker not in flagged and r.uid not in gold]
    rng = random.Random(rules.seed)
    rows = []
    groups: dict[tuple[str, str], list[Rating]] = defaultdict(list)
    for r in kept:
        groups[(r.method, r.question)].append(r)
    for (method, question), items in sorted(groups.items()):
        values = [r.value for r in items]
        per_item: dict[Hashable, list[float]] = defaultdict(list)
        for r in items:
            per_item[r.uid or r.hit].append(r.value)
        lo, hi = t_interval(values)
        blo, bhi = bootstrap_interval(values, rng=rng)
        rows.append(
            {
                "method": method,
                "question": question,
                "mos": statistics.fmean(values),
                "ci95_t": [lo, hi],
                "ci95_bootstrap": [blo, bhi],
                "n_ratings": len(values),
                "n_raters": len({r.worker for r in items}),
                "agreement_alpha": krippendorff_alpha_interval(per_item),
            }
        )
    overall: dict[str, float] = {}
    for question in sorted({r.question for r in kept}):
        per_clip: dict[Hashable, list[float]] = defaultdict(list)
        for r in kept:
            if r.question == question:
                per_clip[r.uid or r.hit].append(r.value)
        overall[question] = krippendorff_alpha_interval(per_clip)
    digit_rows = []
    by_method: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for worker, uid, heard, label in digits:
        if worker not in flagged:
            by_method[manifest["clips"][uid]["method"]].append((heard, label))
    for method, pairs in sorted(by_method.items()):
        heard_digits, labels = [p[0] for p in pairs], [p[1] for p in pairs]
        digit_rows.append(
            {
                "method": method,
                "accuracy": sum(h == lab for h, lab in pairs) / len(pairs),
                "cohen_kappa": cohen_kappa(heard_digits, labels),
                "n_answers": len(pairs),
            }
        )
    return {
        "scores": rows,
        "agreement_alpha": overall,
        "digits": digit_rows,
        "dropped_raters": dict(sorted(flagged.items())),
        "n_raters": len({r.worker for r in ratings}),
        "rules": {
            "gold_max": rules.gold_max,
            "gold_min": rules.gold_min,
            "gold_failures": rules.gold_failures,
            "outlier_z": rules.outlier_z,
            "bootstrap_seed": rules.seed,
        },
    }


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"{'method':<16}{'question':<16}{'MOS':>6}  {'95% CI (t)':<16}{'95% CI (boot)':<16}"
        f"{'ratings':>8}{'raters':>7}{'alpha':>7}"
    ]
    for r in summary["scores"]:
        t, b = r["ci95_t"], r["ci95_bootstrap"]
        alpha = r["agreement_alpha"]
        lines.append(
            f"{r['method']:<16}{r['question']:<16}{r['mos']:>6.2f}  "
            f"{f'{t[0]:.2f}-{t[1]:.2f}':<16}{f'{b[0]:.2f}-{b[1]:.2f}':<16}"
            f"{r['n_ratings']:>8}{r['n_raters']:>7}{'' if math.isnan(alpha) else f'{alpha:.2f}':>7}"
        )
    for question, alpha in summary["agreement_alpha"].items():
        lines.append(f"inter-rater agreement on {question} (Krippendorff's alpha): {alpha:.2f}")
    for d in summary["digits"]:
        lines.append(
            f"{d['method']:<16}digit accuracy {d['accuracy']:.2f}, Cohen's kappa "
            f"{d['cohen_kappa']:.2f} ({d['n_answers']} answers)"
        )
    for worker, why in summary["dropped_raters"].items():
        lines.append(f"dropped rater {worker}: {why}")
    return "\n".join(lines)


def write_outputs(summary: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(json.dumps(summary, indent=2))
    with (out / "scores.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "question", "mos", "ci95_t_low", "ci95_t_high",
                         "ci95_boot_low", "ci95_boot_high", "n_ratings", "n_raters",
                         "agreement_alpha"])  # fmt: skip
        for r in summary["scores"]:
            writer.writerow([r["method"], r["question"], r["mos"], *r["ci95_t"],
                             *r["ci95_bootstrap"], r["n_ratings"], r["n_raters"],
                             r["agreement_alpha"]])  # fmt: skip
