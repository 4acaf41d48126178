"""``score``: MOS with rater filtering and confidence intervals from listening-test results.

Reads result CSVs in MTurk's format (``HITId``, ``AssignmentId``, ``WorkerId``, optionally
``AssignmentStatus``, the clip URLs as inputs and the answers), as MTurk exports them and as
``mos-tools export`` writes them, plus the ``manifest.json`` of every condition rated.

Two sets of field names are read, whichever the HIT page used:

- mos-tools' templates: ``Input.url_<i>`` (from 1), answers ``Answer.<question>_<i>``;
- the reference's templates: ``Input.recording_<i>_url`` (from 0), answers
  ``Answer.recording_<i>_<question>``.

Per-HIT answers are ``Answer.<question>`` and count once per assignment. ``digit`` answers
are compared with the clip's label; every other answer is a 1-5 rating. Rejected assignments
(``AssignmentStatus`` ``Rejected``) are left out.

Raters are dropped when they fail gold items more than ``gold_failures`` times (a gold
rating outside its clip's bounds: per-file bounds from ``build-hits --gold``, else
``gold_min`` / ``gold_max`` for the clips of ``--gold-method``), or when their ratings are
outliers: the mean difference between their ratings and the other raters' mean for the
same clips, as a robust z-score (median / MAD) beyond ``outlier_z``. Gold clips are never
scored.
"""

from __future__ import annotations

import csv
import io
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
from .files import write_text
from .hits import read_manifest
from .stats import (
    bootstrap_interval,
    cohen_kappa,
    krippendorff_alpha_interval,
    normal_interval,
    t_interval,
)

_URL_OURS = re.compile(r"^Input\.url_(?P<i>\d+)$")
_URL_REFERENCE = re.compile(r"^Input\.recording_(?P<i>\d+)_url$")
_CLIP_OURS = re.compile(r"^Answer\.(?P<q>[A-Za-z]+)_(?P<i>\d+)$")
_CLIP_REFERENCE = re.compile(r"^Answer\.recording_(?P<i>\d+)_(?P<q>[A-Za-z]+)$")
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
    """How raters are filtered.

    Attributes:
        gold_max, gold_min: bounds for the clips of ``--gold-method`` (per-file gold carries
            its own bounds in the manifest).
        gold_failures: gold ratings out of bounds a rater may have and still count (1 by
            default: one slip is not a rater who does not listen; the reference dropped at
            the first, which ``0`` reproduces).
        outlier_z: robust z-score beyond which a rater is an outlier (0: off).
        seed: the bootstrap's seed.
    """

    gold_max: float | None = None
    gold_min: float | None = None
    gold_failures: int = 1
    outlier_z: float = 3.5
    seed: int = 0


def merge_manifests(paths: Sequence[Path]) -> dict[str, Any]:
    """One manifest from several (the reference's per-method studies have one each): clips
    and gold of all, keyed by uid and URL (both must be unique)."""
    merged: dict[str, Any] = {"clips": {}, "gold": {}}
    seen_urls: dict[str, Path] = {}
    for path in paths:
        manifest = read_manifest(path)
        for uid, clip in manifest["clips"].items():
            key = f"{manifest.get('condition', '')}/{uid}" if len(paths) > 1 else uid
            if clip["url"] in seen_urls:
                raise MosError(f"{path}: URL {clip['url']} also in {seen_urls[clip['url']]}")
            seen_urls[clip["url"]] = path
            merged["clips"][key] = clip
            if uid in manifest["gold"]:
                merged["gold"][key] = manifest["gold"][uid]
    return merged


def _header_map(path: Path, header: list[str]) -> tuple[dict[str, int], str]:
    """URL column -> recording index, and which field names the file uses."""
    urls: dict[str, int] = {}
    styles = set()
    for column in header:
        for style, pattern in (("mos-tools", _URL_OURS), ("reference", _URL_REFERENCE)):
            match = pattern.match(column)
            if match:
                urls[column] = int(match["i"])
                styles.add(style)
        if column not in urls and (
            column.startswith("Input.url_") or column.startswith("Input.recording_")
        ):
            raise MosError(
                f"{path}: column {column!r} looks like a clip URL but is neither "
                "Input.url_<N> nor Input.recording_<N>_url"
            )
    if len(styles) > 1:
        raise MosError(f"{path}: mixes Input.url_<N> and Input.recording_<N>_url columns")
    return urls, styles.pop() if styles else ""


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    if not path.is_file():
        raise MosError(f"{path}: no such results file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MosError(
            f"{path}: not UTF-8 text (byte {exc.start}); export the results as UTF-8 CSV"
        ) from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = list(reader.fieldnames or [])
        rows = []
        for number, row in enumerate(reader, 2):
            if None in row:
                raise MosError(f"{path}:{number}: more fields than the header has")
            rows.append((number, row))
    except csv.Error as exc:
        raise MosError(f"{path}: not a readable CSV ({exc})") from None
    return header, rows


def read_results(
    paths: Sequence[Path], manifest: dict[str, Any]
) -> tuple[list[Rating], list[tuple[str, str, int, int]]]:
    """Ratings and digit answers ``(worker, uid, heard, label)`` from result CSVs.

    Raises:
        MosError: one line naming the file (and row) of the first problem.
    """
    clips = manifest["clips"]
    by_url = {c["url"]: uid for uid, c in clips.items()}
    ratings: list[Rating] = []
    digits: list[tuple[str, str, int, int]] = []
    seen: dict[str, str] = {}
    for path in paths:
        header, rows = _read_rows(path)
        missing = [c for c in REQUIRED if c not in header]
        url_columns, style = _header_map(path, header)
        if missing or not url_columns:
            what = ", ".join(missing) if missing else "Input.url_1 (or Input.recording_0_url)"
            raise MosError(f"{path}: missing column {what}; is this a results CSV?")
        pattern = _CLIP_REFERENCE if style == "reference" else _CLIP_OURS
        answers = [h for h in header if h.startswith("Answer.")]
        if not answers:
            raise MosError(f"{path}: no Answer.* columns")
        for row_number, row in rows:
            where = f"{path}:{row_number}"
            if (row.get("AssignmentStatus") or "").strip() == "Rejected":
                continue
            assignment = row["AssignmentId"]
            if assignment in seen:
                raise MosError(
                    f"{where}: duplicate assignment {assignment} (first at {seen[assignment]})"
                )
            seen[assignment] = where
            worker, hit = row["WorkerId"], row["HITId"]
            uids: dict[int, str] = {}
            for column, index in url_columns.items():
                url = (row[column] or "").strip()
                if url == "":  # a shorter HIT in a file whose header fits the longest
                    continue
                if url not in by_url:
                    raise MosError(f"{where}: {column} {url!r} is not in the manifest")
                uids[index] = by_url[url]
            hit_methods = {clips[u]["method"] for u in uids.values()}
            for key in answers:
                text = (row.get(key) or "").strip()
                clip = pattern.match(key)
                if text == "" and clip and int(clip["i"]) not in uids:
                    continue  # a recording this (shorter) HIT does not have
                if text == "":
                    raise MosError(f"{where}: {key} is empty")
                try:
                    value = float(text)
                except ValueError:
                    raise MosError(f"{where}: {key} is {text!r}, not a number") from None
                if not math.isfinite(value):
                    raise MosError(f"{where}: {key} is {text!r}, not a number")
                if clip:
                    question, index = clip["q"], int(clip["i"])
                    if index not in uids:
                        raise MosError(
                            f"{where}: {key} has no clip URL column for recording {index}"
                        )
                    uid = uids[index]
                    if question == "digit":
                        label = clips[uid].get("label")
                        if label is not None:
                            digits.append((worker, uid, int(value), int(label)))
                        continue
                    _check_scale(value, where, key)
                    ratings.append(Rating(worker, hit, clips[uid]["method"], question, value, uid))
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
                else:
                    raise MosError(f"{where}: {key} is not an answer this HIT page asks")
    if not ratings and not digits:
        names = ", ".join(str(p) for p in paths)
        raise MosError(f"{names}: no ratings (only a header, or every assignment rejected)")
    return ratings, digits


def _check_scale(value: float, where: str, key: str) -> None:
    if not 1 <= value <= 5:
        raise MosError(f"{where}: {key} is {value:g}, outside the 1-5 scale")


def _outside(value: float, bounds: Sequence[float | None]) -> bool:
    lo, hi = bounds
    return (lo is not None and value < lo) or (hi is not None and value > hi)


def flag_raters(ratings: list[Rating], manifest: dict[str, Any], rules: Rules) -> dict[str, str]:
    """Worker -> why they are dropped."""
    flagged: dict[str, str] = {}
    gold: dict[str, dict[str, list[float | None]]] = manifest.get("gold", {})
    default = [rules.gold_min, rules.gold_max]
    failures: dict[str, int] = defaultdict(int)
    for r in ratings:
        if r.uid in gold:
            bounds = gold[r.uid].get(r.question, default)
            if _outside(r.value, bounds):
                failures[r.worker] += 1
    for worker, count in failures.items():
        if count > rules.gold_failures:
            flagged[worker] = f"failed {count} gold ratings (allowed: {rules.gold_failures})"
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
    gold = set(manifest.get("gold", {}))
    kept = [r for r in ratings if r.worker not in flagged and r.uid not in gold]
    if not kept and not digits:
        raise MosError(
            f"every rater was dropped ({len(flagged)}: {', '.join(sorted(flagged)[:5])}); check "
            "the gold bounds and --gold-failures"
        )
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
        nlo, nhi = normal_interval(values)
        rows.append(
            {
                "method": method,
                "question": question,
                "mos": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else math.nan,
                "ci95_t": [lo, hi],
                "ci95_bootstrap": [blo, bhi],
                "ci95_normal": [nlo, nhi],
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


def _number(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.2f}"


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"{'method':<16}{'question':<16}{'MOS':>6}  {'95% CI (t)':<16}{'95% CI (boot)':<16}"
        f"{'ratings':>8}{'raters':>7}{'alpha':>7}"
    ]
    for r in summary["scores"]:
        t, b = r["ci95_t"], r["ci95_bootstrap"]
        lines.append(
            f"{r['method']:<16}{r['question']:<16}{r['mos']:>6.2f}  "
            f"{f'{t[0]:.2f}-{t[1]:.2f}':<16}{f'{b[0]:.2f}-{b[1]:.2f}':<16}"
            f"{r['n_ratings']:>8}{r['n_raters']:>7}{_number(r['agreement_alpha']):>7}"
        )
    for question, alpha in summary["agreement_alpha"].items():
        lines.append(
            f"inter-rater agreement on {question} (Krippendorff's alpha): {_number(alpha) or '-'}"
        )
    for d in summary["digits"]:
        lines.append(
            f"{d['method']:<16}digit accuracy {d['accuracy']:.2f}, Cohen's kappa "
            f"{d['cohen_kappa']:.2f} ({d['n_answers']} answers)"
        )
    for worker, why in summary["dropped_raters"].items():
        lines.append(f"dropped rater {worker}: {why}")
    return "\n".join(lines)


COLUMNS = (
    "method", "question", "mos", "std", "ci95_t_low", "ci95_t_high", "ci95_boot_low",
    "ci95_boot_high", "ci95_normal_low", "ci95_normal_high", "n_ratings", "n_raters",
    "agreement_alpha",
)  # fmt: skip


def check_out_dir(out: Path, *, force: bool) -> None:
    """Refuse ``--out`` when it is a file, or holds scores already (without ``force``)."""
    if out.exists() and not out.is_dir():
        raise MosError(f"--out {out}: is a file; name a folder")
    existing = [n for n in ("scores.csv", "scores.json") if (out / n).exists()]
    if existing and not force:
        raise MosError(f"--out {out}: holds {', '.join(existing)}; pass --force to replace them")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_outputs(summary: dict[str, Any], out: Path, *, force: bool = False) -> None:
    """``scores.csv`` and ``scores.json`` in ``out``, atomically (NaN written as null / empty)."""
    check_out_dir(out, force=force)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "scores.json", json.dumps(_finite(summary), indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for r in summary["scores"]:
        values = [r["mos"], r["std"], *r["ci95_t"], *r["ci95_bootstrap"], *r["ci95_normal"]]
        alpha = r["agreement_alpha"]
        writer.writerow(
            [
                r["method"],
                r["question"],
                *("" if math.isnan(v) else v for v in values),
                r["n_ratings"],
                r["n_raters"],
                "" if math.isnan(alpha) else alpha,
            ]
        )
    write_text(out / "scores.csv", buffer.getvalue())
