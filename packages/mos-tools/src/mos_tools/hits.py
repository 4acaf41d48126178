"""``build-hits``: turn folders of wavs into listening-test batches (MTurk or ``serve``).

Layout in: ``<input>/<method>/<name>.wav`` and, optionally, a labels CSV
(``method,file,label[,confidence]``, what ``select-confident`` writes as ``labels.csv``).

HIT layouts (``--hit-layout``):

- ``mixed`` (default): the files are cut into batches of ``batch size`` names; a batch holds
  every method's version of its names, shuffled and cut into HITs of ``batch size`` clips, so
  a HIT mixes methods. Every method needs the same names.
- ``per-method``: each method's own files (they may differ, as ``select-confident`` keeps
  different files per method) are cut into HITs of ``batch size`` clips of that method alone
  (the reference's SC09 study: the speech form asks about a whole HIT).
- ``all-methods``: a HIT holds every method's version of ``batch size`` names, shuffled: with
  ``--batch-size 1``, one clip of each method per HIT (the reference's YouTubeMix study).

Order and ids come from the seed alone (the same ``--seed`` rebuilds the same study): names
in natural order are shuffled with ``Random(seed + 42)``, ids drawn from ``Random(seed)`` for
every method and name in that order, and each batch's clips shuffled with a second
``Random(seed + 42)``: the reference's scheme, whose fixed seeds (0 and 42) are
``--seed 0``. ``--style reference`` also writes the reference's files (32-hex-digit ids,
batch folders ``0``, ``1``, ..., ``recording_<i>_url`` columns counted from 0, ``uids.txt``
as ``method file uid``, one folder ``<condition>-<method>`` per method for ``per-method``),
so its studies are rebuilt id for id.

Layout out, under ``<output>/<condition>/`` (``--style mos-tools``):

- ``<batch>/<uid>.wav``: every clip under an unguessable id;
- ``urls.csv`` and ``urls_<batch>.csv``: batch input files, header ``url_1,...,url_K``
  (``K`` clips per HIT), one row per HIT;
- ``batches.txt``: batch names; ``uids.txt``: ``uid<TAB>method<TAB>file``;
- ``manifest.json``: settings, every uid's method, file, batch, HIT, position, URL and
  label, and the gold items with their bounds.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import secrets
import string
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import MosError
from .files import check_file_name, check_name, copy_file, staged_dir, write_text
from .wavinfo import wav_info

HitLayout = Literal["mixed", "per-method", "all-methods"]
Style = Literal["mos-tools", "reference"]
Form = Literal["music", "speech"]
LAYOUTS: tuple[HitLayout, ...] = ("mixed", "per-method", "all-methods")
STYLES: tuple[Style, ...] = ("mos-tools", "reference")
FORMS: tuple[Form, ...] = ("music", "speech")
MANIFEST_VERSION = 2
Bounds = dict[str, list[float | None]]  # question -> [lowest allowed, highest allowed]


# -- gold items -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gold:
    """A known-answer clip: ``method``'s ``file``, whose ratings must stay within ``bounds``
    (question -> ``[min, max]``; an empty mapping takes ``score``'s ``--gold-min/--gold-max``)."""

    method: str
    file: str
    bounds: Bounds = field(default_factory=dict)


_BOUND = re.compile(r"(?P<q>[A-Za-z]+)\s*(?P<op><=|>=)\s*(?P<v>[0-9]+(\.[0-9]+)?)")


def parse_gold(spec: str) -> Gold:
    """``METHOD/FILE[:QUESTION<=MAX,QUESTION>=MIN,...]`` as given to ``--gold``.

    >>> parse_gold("test/4.wav:quality<=2,musicality<=2").bounds
    {'quality': [None, 2.0], 'musicality': [None, 2.0]}
    """
    where, _, rules = spec.partition(":")
    method, sep, name = where.partition("/")
    if not sep or not method or not name:
        raise MosError(f"--gold {spec!r}: expected METHOD/FILE[:QUESTION<=MAX,...]")
    bounds: Bounds = {}
    for rule in filter(None, (r.strip() for r in rules.split(","))) if rules else ():
        match = _BOUND.fullmatch(rule)
        if not match:
            raise MosError(f"--gold {spec!r}: {rule!r} is not QUESTION<=NUMBER or QUESTION>=NUMBER")
        lo_hi = bounds.setdefault(match["q"], [None, None])
        lo_hi[1 if match["op"] == "<=" else 0] = float(match["v"])
    return Gold(method, name, bounds)


def read_gold_file(path: Path) -> list[Gold]:
    """A CSV with columns ``method,file,question,min,max`` (``min`` or ``max`` may be empty)."""
    rows = _read_csv(path, ("method", "file", "question", "min", "max"))
    by_clip: dict[tuple[str, str], Bounds] = {}
    for number, row in rows:
        bounds = by_clip.setdefault((row["method"], row["file"]), {})
        pair: list[float | None] = []
        for key in ("min", "max"):
            text = (row[key] or "").strip()
            try:
                pair.append(float(text) if text else None)
            except ValueError:
                raise MosError(f"{path}:{number}: {key} is {text!r}, not a number") from None
        if not row["question"]:
            raise MosError(f"{path}:{number}: question is empty")
        bounds[row["question"]] = pair
    return [Gold(m, f, b) for (m, f), b in by_clip.items()]


# -- inputs -----------------------------------------------------------------------------------
def natural_key(name: str) -> list[Any]:
    """Sort key putting ``2.wav`` before ``10.wav`` (natsort's default order)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _method_files(input_dir: Path, methods: Sequence[str], style: Style) -> dict[str, list[str]]:
    if not input_dir.is_dir():
        raise MosError(f"--input-dir {input_dir}: no such folder")
    found: dict[str, list[str]] = {}
    for method in methods:
        folder = input_dir / method
        if not folder.is_dir():
            raise MosError(f"{folder}: missing; --methods names a folder of --input-dir")
        paths = [p for p in folder.iterdir() if p.name.lower().endswith(".wav")]
        names = [check_file_name(p, spaces=style != "reference") for p in paths]
        if not names:
            raise MosError(f"{folder}: no .wav files")
        found[method] = sorted(names, key=natural_key)
    return found


def _same_names(input_dir: Path, files: dict[str, list[str]], layout: HitLayout) -> list[str]:
    methods = list(files)
    reference = set(files[methods[0]])
    for method in methods[1:]:
        names = set(files[method])
        missing, extra = sorted(reference - names, key=natural_key), sorted(names - reference)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lacks {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}")
            if extra:
                parts.append(f"has extra {', '.join(extra[:5])}{'...' if len(extra) > 5 else ''}")
            raise MosError(
                f"{input_dir / method}: {' and '.join(parts)} compared with "
                f"{input_dir / methods[0]}; --hit-layout {layout} needs the same wav names in "
                "every method (--hit-layout per-method takes different files)"
            )
    return files[methods[0]]


def read_labels(path: Path) -> dict[tuple[str, str], int]:
    """``(method, file) -> label`` from a CSV with ``method,file,label`` columns."""
    labels: dict[tuple[str, str], int] = {}
    for number, row in _read_csv(path, ("method", "file", "label")):
        text = (row["label"] or "").strip()
        if not text.isdigit():
            raise MosError(f"{path}:{number}: label is {text!r}, not a class number (0, 1, ...)")
        key = (row["method"], row["file"])
        if key in labels:
            raise MosError(f"{path}:{number}: {key[0]}/{key[1]} is labelled twice")
        labels[key] = int(text)
    return labels


def _read_csv(path: Path, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise MosError(f"{path}: no such file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MosError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        reader = csv.DictReader(text.splitlines())
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise MosError(
                f"{path}: missing column {', '.join(missing)} (needs {','.join(columns)})"
            )
        rows = []
        for number, row in enumerate(reader, 2):
            if None in row or any(row[c] is None for c in columns):
                raise MosError(f"{path}:{number}: wrong number of fields")
            rows.append((number, row))
    except csv.Error as exc:
        raise MosError(f"{path}: not a readable CSV ({exc})") from None
    return rows


def check_url_template(template: str) -> bool:
    """Whether ``template`` is positional (three ``{}``: condition, batch, uid, the
    reference's form) rather than named (``{condition}``, ``{batch}``, ``{uid}``).

    Raises:
        MosError: an unknown field, a format spec, no uid, or characters that would break the
            HTML attribute or the URL (quotes, ``<``, ``>``, spaces).
    """
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise MosError(
            f"--url-template {template!r}: {exc} (write a literal brace as {{{{)"
        ) from None
    literal = "".join(text for text, *_ in parts)
    bad = sorted({c for c in literal if c in "\"'<>`\\" or c.isspace()})
    if bad:
        raise MosError(
            f"--url-template {template!r}: holds {' '.join(map(repr, bad))}, which would break "
            "the HIT page or the URL; percent-encode them"
        )
    fields = [(name, spec, conv) for _, name, spec, conv in parts if name is not None]
    if any(spec or conv for _, spec, conv in fields):
        raise MosError(f"--url-template {template!r}: format specs and conversions are not allowed")
    names = [name for name, _, _ in fields]
    if names and all(name == "" for name in names):
        if len(names) != 3:
            raise MosError(
                f"--url-template {template!r}: {len(names)} positional {{}}; the positional "
                "form takes exactly three (condition, batch, uid)"
            )
        return True
    unknown = sorted({n for n in names if n not in {"condition", "batch", "uid"}})
    if unknown:
        raise MosError(
            f"--url-template {template!r}: unknown field "
            f"{', '.join('{' + n + '}' for n in unknown)}; use {{condition}}, {{batch}} and {{uid}}"
        )
    if "uid" not in names:
        raise MosError(f"--url-template {template!r}: must contain {{uid}}")
    return False


def _url(template: str, positional: bool, condition: str, batch: str, uid: str) -> str:
    values = [urllib.parse.quote(v, safe="") for v in (condition, batch, uid)]
    if positional:
        return template.format(*values)
    return template.format(condition=values[0], batch=values[1], uid=values[2])


# -- the plan ---------------------------------------------------------------------------------
@dataclass
class _Study:
    """One condition folder: its batches (name -> HITs -> (method, file) clips) and ids."""

    condition: str
    methods: list[str]
    batches: list[tuple[str, list[list[tuple[str, str]]]]] = field(default_factory=list)
    uids: dict[tuple[str, str], str] = field(default_factory=dict)
    batch_files: dict[str, list[str]] = field(default_factory=dict)


def _draw_uids(
    rng: random.Random, bits: int, items: list[tuple[str, str]], taken: set[str]
) -> dict[tuple[str, str], str]:
    uids: dict[tuple[str, str], str] = {}
    for item in items:
        uid = f"{rng.getrandbits(bits):0{bits // 4}x}"
        while uid in taken:
            uid = f"{rng.getrandbits(bits):0{bits // 4}x}"
        taken.add(uid)
        uids[item] = uid
    return uids


def _batch_name(style: Style, index: int) -> str:
    return str(index) if style == "reference" else f"batch{index:03d}"


def _plan_shared(
    condition: str,
    methods: list[str],
    names: list[str],
    *,
    layout: HitLayout,
    batch_size: int,
    seed: int,
    style: Style,
) -> _Study:
    """``mixed`` and ``all-methods``: every method has the same names."""
    order = names[:]
    random.Random(seed + 42).shuffle(order)
    bits = 128 if style == "reference" else 64
    study = _Study(condition, methods)
    study.uids = _draw_uids(
        random.Random(seed), bits, [(m, f) for m in methods for f in order], set()
    )
    shuffle = random.Random(seed + 42)
    for b in range(len(order) // batch_size):
        chunk = order[b * batch_size : (b + 1) * batch_size]
        clips = [(m, f) for m in methods for f in chunk]
        shuffle.shuffle(clips)
        if layout == "all-methods":
            hits = [clips]
        else:
            hits = [clips[i : i + batch_size] for i in range(0, len(clips), batch_size)]
        name = _batch_name(style, b)
        study.batches.append((name, hits))
        study.batch_files[name] = chunk
    return study


def _plan_per_method(
    condition: str, files: dict[str, list[str]], *, batch_size: int, seed: int, style: Style
) -> list[_Study]:
    """``per-method``: each method's own files, HITs of one method. The reference ran one
    study per method (fresh seeds, a folder each); mos-tools keeps one folder."""
    studies: list[_Study] = []
    shared = _Study(condition, list(files))
    ids, order_rng, clip_rng = (
        random.Random(seed),
        random.Random(seed + 42),
        random.Random(seed + 42),
    )
    taken: set[str] = set()
    index = 0
    for method, names in files.items():
        order = names[:]
        if style == "reference":  # a fresh run per method, as the reference made them
            ids, order_rng, clip_rng = (
                random.Random(seed),
                random.Random(seed + 42),
                random.Random(seed + 42),
            )
            taken = set()
            target = _Study(check_name(f"{condition}-{method}", "--condition"), [method])
            studies.append(target)
            index = 0
        else:
            target = shared
        order_rng.shuffle(order)
        bits = 128 if style == "reference" else 64
        target.uids.update(_draw_uids(ids, bits, [(method, f) for f in order], taken))
        for b in range(len(order) // batch_size):
            chunk = order[b * batch_size : (b + 1) * batch_size]
            clips = [(method, f) for f in chunk]
            clip_rng.shuffle(clips)
            name = _batch_name(style, index)
            target.batches.append((name, [clips]))
            target.batch_files[name] = chunk
            index += 1
    return studies if style == "reference" else [shared]


def _check_batch_size(files: dict[str, list[str]], batch_size: int, layout: HitLayout) -> None:
    groups = files.items() if layout == "per-method" else [next(iter(files.items()))]
    for method, names in groups:
        if batch_size < 1 or len(names) % batch_size:
            divisors = [d for d in range(1, len(names) + 1) if len(names) % d == 0]
            whose = f" of method {method!r}" if layout == "per-method" else " per method"
            raise MosError(
                f"--batch-size {batch_size} must divide the {len(names)} files{whose}; use one "
                f"of {', '.join(map(str, divisors))}, or add or remove files"
            )


# -- building ---------------------------------------------------------------------------------
def build_hits(
    *,
    condition: str,
    input_dir: Path,
    methods: list[str],
    batch_size: int,
    output_dir: Path,
    url_template: str = "https://example.com/{condition}/{batch}/{uid}.wav",
    seed: int | None = None,
    gold_method: str | None = None,
    gold: Sequence[Gold] = (),
    hit_layout: HitLayout = "mixed",
    style: Style = "mos-tools",
    form: Form = "music",
    labels: Path | None = None,
    sample_rate: int | None = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Check every input, then write the condition folder(s) atomically; returns their
    manifests (one, or one per method for ``style="reference"`` with ``per-method``)."""
    if not methods:
        raise MosError("--methods needs at least one method folder")
    if len(set(methods)) != len(methods):
        raise MosError(f"--methods lists a method twice: {' '.join(methods)}")
    check_name(condition, "--condition")
    for method in methods:
        check_name(method, "--methods")
    if hit_layout not in LAYOUTS:
        raise MosError(f"--hit-layout {hit_layout!r}: choose {', '.join(LAYOUTS)}")
    if style not in STYLES:
        raise MosError(f"--style {style!r}: choose {', '.join(STYLES)}")
    if form not in FORMS:
        raise MosError(f"--form {form!r}: choose {', '.join(FORMS)}")
    if style == "reference" and hit_layout == "mixed":
        raise MosError(
            "--style reference has the reference's layouts: --hit-layout all-methods "
            "(YouTubeMix) or per-method (SC09)"
        )
    if form == "speech" and len(methods) > 1 and hit_layout != "per-method":
        raise MosError(
            "--form speech asks about a whole HIT (quality, speaker diversity), which needs one "
            "method per HIT: use --hit-layout per-method"
        )
    if gold_method is not None and gold_method not in methods:
        raise MosError(f"--gold-method {gold_method!r} is not one of --methods")
    positional = check_url_template(url_template)
    files = _method_files(input_dir, methods, style)
    shared = None if hit_layout == "per-method" else _same_names(input_dir, files, hit_layout)
    _check_batch_size(files, batch_size, hit_layout)
    gold_bounds: dict[tuple[str, str], Bounds] = {}
    for item in gold:
        if item.method not in files or item.file not in files[item.method]:
            raise MosError(
                f"--gold {item.method}/{item.file}: no such clip under {input_dir} (methods: "
                f"{', '.join(methods)})"
            )
        gold_bounds[(item.method, item.file)] = item.bounds
    if gold_method is not None:
        for name in files[gold_method]:
            gold_bounds.setdefault((gold_method, name), {})
    label_path = labels if labels is not None else input_dir / "labels.csv"
    label_map = read_labels(label_path) if labels is not None or label_path.is_file() else {}
    rate = _check_clips(input_dir, files, sample_rate)
    seed = seed if seed is not None else (0 if style == "reference" else secrets.randbelow(2**31))
    if shared is not None:
        studies = [
            _plan_shared(condition, methods, shared, layout=hit_layout, batch_size=batch_size,
                         seed=seed, style=style)
        ]  # fmt: skip
    else:
        studies = _plan_per_method(condition, files, batch_size=batch_size, seed=seed, style=style)
    settings = {
        "version": MANIFEST_VERSION,
        "seed": seed,
        "style": style,
        "hit_layout": hit_layout,
        "form": form,
        "batch_size": batch_size,
        "sample_rate": rate,
        "url_template": url_template,
        "gold_method": gold_method,
        "labels": str(label_path) if label_map else None,
    }
    manifests = [
        _manifest(s, settings, url_template, positional, gold_bounds, label_map) for s in studies
    ]
    for study in studies:  # refuse before anything is written
        target = output_dir / study.condition
        if target.exists() and not force:
            raise MosError(f"{target} already exists; pass --force to replace it")
    for study, manifest in zip(studies, manifests, strict=True):
        with staged_dir(output_dir / study.condition, force=force) as tmp:
            _write_study(tmp, study, manifest, input_dir, style)
    return manifests


def _check_clips(input_dir: Path, files: dict[str, list[str]], expected: int | None) -> int:
    """Every clip is a readable wav at one sample rate (``expected``, else the first's)."""
    rate = expected
    first = None
    for method, names in files.items():
        for name in names:
            path = input_dir / method / name
            info = wav_info(path)
            if rate is None:
                rate, first = info.sample_rate, path
            if info.sample_rate != rate:
                source = f"--sample-rate {expected}" if expected else f"{first}"
                raise MosError(
                    f"{path}: {info.sample_rate} Hz, but {source} is {rate} Hz; raters must "
                    "hear every clip at one rate (resample it, or pass --sample-rate)"
                )
    assert rate is not None
    return rate


def _manifest(
    study: _Study,
    settings: dict[str, Any],
    template: str,
    positional: bool,
    gold: dict[tuple[str, str], Bounds],
    labels: dict[tuple[str, str], int],
) -> dict[str, Any]:
    clips: dict[str, dict[str, Any]] = {}
    reference = settings["style"] == "reference"
    for batch, hits in study.batches:
        for h, hit in enumerate(hits):
            hit_id = batch if reference else f"{batch}-{h:03d}"
            for position, (method, name) in enumerate(hit, 0 if reference else 1):
                uid = study.uids[(method, name)]
                clips[uid] = {
                    "method": method,
                    "file": name,
                    "batch": batch,
                    "hit": hit_id,
                    "position": position,
                    "url": _url(template, positional, study.condition, batch, uid),
                    "label": labels.get((method, name)),
                }
    hit_size = max(len(hit) for _, hits in study.batches for hit in hits)
    return {
        "condition": study.condition,
        **settings,
        "methods": study.methods,
        "hit_size": hit_size,
        "fields": {"url": "recording_{i}_url", "first": 0}
        if reference
        else {"url": "url_{i}", "first": 1},
        "gold": {study.uids[key]: bounds for key, bounds in gold.items() if key in study.uids},
        "clips": clips,
    }


def _write_study(
    tmp: Path, study: _Study, manifest: dict[str, Any], input_dir: Path, style: Style
) -> None:
    clips = manifest["clips"]
    by_hit: dict[str, list[str]] = {}
    for uid, clip in sorted(clips.items(), key=lambda kv: kv[1]["position"]):
        by_hit.setdefault(clip["hit"], []).append(uid)
    k = manifest["hit_size"]
    header = (
        [f"recording_{i}_url" for i in range(k)]
        if style == "reference"
        else [f"url_{i}" for i in range(1, k + 1)]
    )
    all_rows: list[list[str]] = []
    for batch, hits in study.batches:
        (tmp / batch).mkdir()
        rows = []
        for h in range(len(hits)):
            hit_id = batch if style == "reference" else f"{batch}-{h:03d}"
            row = []
            for uid in by_hit[hit_id]:
                clip = clips[uid]
                copy_file(input_dir / clip["method"] / clip["file"], tmp / batch / f"{uid}.wav")
                row.append(clip["url"])
            rows.append(row)
        write_text(tmp / f"urls_{batch}.csv", _csv(header, rows, style))
        all_rows += rows
    write_text(tmp / "urls.csv", _csv(header, all_rows, style))
    if style == "reference":
        write_text(tmp / "batches.txt", "".join(" ".join(study.batch_files[b]) + "\n"
                                                for b, _ in study.batches))  # fmt: skip
        write_text(tmp / "uids.txt", "".join(f"{m} {f} {u}\n" for (m, f), u in study.uids.items()))
    else:
        write_text(tmp / "batches.txt", "".join(f"{b}\n" for b, _ in study.batches))
        write_text(
            tmp / "uids.txt", "".join(f"{u}\t{m}\t{f}\n" for (m, f), u in study.uids.items())
        )
    write_text(tmp / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def _csv(header: list[str], rows: list[list[str]], style: Style) -> str:
    if style == "reference":  # the reference joins with commas and newlines, no final newline
        return "\n".join(",".join(r) for r in [header, *rows])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


# -- reading a manifest -----------------------------------------------------------------------
def read_manifest(path: Path) -> dict[str, Any]:
    """A ``manifest.json`` of ``build-hits``, checked enough for ``score`` and ``serve``.

    Raises:
        MosError: missing, not JSON, or lacking its clips (named).
    """
    if not path.is_file():
        raise MosError(f"{path}: no such manifest (build-hits writes CONDITION/manifest.json)")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MosError(f"{path}: not a JSON manifest ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("clips"), dict) or not data["clips"]:
        raise MosError(f"{path}: lacks its clips (is it a build-hits manifest.json?)")
    for uid, clip in data["clips"].items():
        if not isinstance(clip, dict) or not all(
            isinstance(clip.get(k), str) for k in ("method", "file", "url", "hit")
        ):
            raise MosError(f"{path}: clip {uid!r} lacks its method, file, url or hit")
    gold = data.get("gold", {})
    if isinstance(gold, list):  # manifests of mos-tools 0.1: a list of uids
        data["gold"] = {uid: {} for uid in gold}
    elif not isinstance(gold, dict):
        raise MosError(f"{path}: its gold is neither a list nor a table of uids")
    return data
