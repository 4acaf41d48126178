"""``build-hits``: turn folders of wavs into MTurk batches.

Layout in: ``<input>/<method>/<name>.wav`` with the same names in every method folder (and,
optionally, ``<input>/labels.csv`` from ``select-confident``).

Layout out, under ``<output>/<condition>/``:

- ``<batch>/<uid>.wav``: every (method, file) under an unguessable 16-hex-digit id;
- ``urls.csv`` and ``urls_<batch>.csv``: MTurk batch input files, header
  ``url_1,...,url_K`` and one row (one HIT) of ``K = batch size`` clip URLs;
- ``batches.txt``: batch names, one per line; ``uids.txt``: ``uid<TAB>method<TAB>file``;
- ``manifest.json``: seed, settings, every uid's method, file, batch, HIT and URL, the gold
  uids and the classifier labels.

Files are shuffled with a recorded seed: file order first (then cut into batches of
``batch size`` files, each with every method's version of those files), then the clips
inside each batch. ``--hit-layout per-method`` keeps each HIT to a single method (the speech
study asks about diversity within a HIT).
"""

from __future__ import annotations

import csv
import json
import random
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from .errors import MosError

HitLayout = Literal["mixed", "per-method"]


def _method_files(input_dir: Path, methods: list[str]) -> list[str]:
    names: dict[str, set[str]] = {}
    for method in methods:
        folder = input_dir / method
        if not folder.is_dir():
            raise MosError(f"{folder}: missing; --methods names a folder of --input-dir")
        names[method] = {p.name for p in folder.glob("*.wav")}
        if not names[method]:
            raise MosError(f"{folder}: no .wav files")
    reference = names[methods[0]]
    for method in methods[1:]:
        missing = sorted(reference - names[method])
        extra = sorted(names[method] - reference)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lacks {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}")
            if extra:
                parts.append(f"has extra {', '.join(extra[:5])}{'...' if len(extra) > 5 else ''}")
            raise MosError(
                f"{input_dir / method}: {' and '.join(parts)} compared with "
                f"{input_dir / methods[0]}; every method needs the same wav names"
            )
    return sorted(reference)


def _labels(input_dir: Path) -> dict[str, dict[str, int]]:
    path = input_dir / "labels.csv"
    if not path.is_file():
        return {}
    labels: dict[str, dict[str, int]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            labels.setdefault(row["method"], {})[row["file"]] = int(row["label"])
    return labels


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
    hit_layout: HitLayout = "mixed",
    force: bool = False,
) -> dict[str, Any]:
    """Write the batches; returns the manifest."""
    if not methods:
        raise MosError("--methods needs at least one method folder")
    if len(set(methods)) != len(methods):
        raise MosError(f"--methods lists a method twice: {' '.join(methods)}")
    if gold_method is not None and gold_method not in methods:
        raise MosError(f"--gold-method {gold_method!r} is not one of --methods")
    if "/" in condition or not condition or condition in {".", ".."}:
        raise MosError(f"--condition must be a plain name; got {condition!r}")
    target = output_dir / condition
    if target.exists() and not force:
        raise MosError(f"{target} already exists; pass --force to replace it")
    files = _method_files(input_dir, methods)
    if batch_size < 1 or len(files) % batch_size:
        divisors = [d for d in range(1, len(files) + 1) if len(files) % d == 0]
        raise MosError(
            f"--batch-size {batch_size} must divide the {len(files)} files per method; "
            f"use one of {', '.join(map(str, divisors))}, or add or remove files"
        )
    if "{uid}" not in url_template:
        raise MosError(f"--url-template must contain {{uid}}; got {url_template!r}")
    seed = seed if seed is not None else secrets.randbelow(2**31)
    rng = random.Random(seed)
    order = files[:]
    rng.shuffle(order)
    labels = _labels(input_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output_dir, prefix=f".{condition}.tmp-"))
    clips: dict[str, dict[str, Any]] = {}
    batches: list[str] = []
    all_rows: list[list[str]] = []
    try:
        for b in range(len(order) // batch_size):
            batch = f"batch{b:03d}"
            batches.append(batch)
            chunk = order[b * batch_size : (b + 1) * batch_size]
            items = [(m, f) for m in methods for f in chunk]
            if hit_layout == "per-method":
                hits = []
                for m in methods:
                    group = [(m, f) for f in chunk]
                    rng.shuffle(group)
                    hits.append(group)
                rng.shuffle(hits)
            else:
                rng.shuffle(items)
                hits = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
            rows = []
            for h, hit in enumerate(hits):
                row = []
                for position, (method, name) in enumerate(hit, 1):
                    uid = secrets.token_hex(8)
                    url = url_template.format(condition=condition, batch=batch, uid=uid)
                    (tmp / batch).mkdir(exist_ok=True)
                    shutil.copy2(input_dir / method / name, tmp / batch / f"{uid}.wav")
                    clips[uid] = {
                        "method": method,
                        "file": name,
                        "batch": batch,
                        "hit": f"{batch}-{h:03d}",
                        "position": position,
                        "url": url,
                        "label": labels.get(method, {}).get(name),
                    }
                    row.append(url)
                rows.append(row)
            _write_csv(tmp / f"urls_{batch}.csv", batch_size, rows)
            all_rows += rows
        _write_csv(tmp / "urls.csv", batch_size, all_rows)
        (tmp / "batches.txt").write_text("".join(f"{b}\n" for b in batches))
        (tmp / "uids.txt").write_text(
            "".join(f"{uid}\t{c['method']}\t{c['file']}\n" for uid, c in clips.items())
        )
        manifest = {
            "condition": condition,
            "seed": seed,
            "methods": methods,
            "batch_size": batch_size,
            "hit_layout": hit_layout,
            "url_template": url_template,
            "gold_method": gold_method,
            "gold": sorted(u for u, c in clips.items() if c["method"] == gold_method),
            "clips": clips,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _write_csv(path: Path, k: int, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"url_{i}" for i in range(1, k + 1)])
        writer.writerows(rows)
