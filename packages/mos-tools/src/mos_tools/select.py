"""``select-confident``: the SC09 samples a classifier is most sure of, per method and class.

For each method, ``<probs>/<method>.npy`` holds one row of class probabilities per wav of
``<samples>/<method>/`` in sorted file-name order (what audio-metrics writes). The ``top_k``
files with the highest maximum probability per predicted class are copied to
``<out>/<method>/``, and ``<out>/labels.csv`` records ``method,file,label,confidence``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .errors import MosError
from .files import check_file_name, check_name, copy_file, staged_dir, write_text
from .npy import read_matrix


def select_confident(
    probs: Path, samples: Path, methods: list[str], *, top_k: int, out: Path, force: bool = False
) -> dict[str, int]:
    """Returns the number of files kept per method."""
    if top_k < 1:
        raise MosError(f"--top-k must be at least 1; got {top_k}")
    if out.exists() and not force:
        raise MosError(f"{out} already exists; pass --force to replace it")
    plan: dict[str, list[tuple[Path, int, float]]] = {}
    for method in methods:
        check_name(method, "--methods")
        matrix_path = probs / f"{method}.npy"
        if not matrix_path.is_file():
            raise MosError(f"{matrix_path}: missing (one .npy of probabilities per method)")
        folder = samples / method
        files = sorted(folder.glob("*.wav")) if folder.is_dir() else []
        for path in files:
            check_file_name(path)
        if not files:
            raise MosError(f"{folder}: no .wav files for method {method!r}")
        matrix = read_matrix(matrix_path)
        if len(matrix) != len(files):
            raise MosError(
                f"{matrix_path}: {len(matrix)} rows, but {folder} holds {len(files)} wavs; "
                "rows must follow the sorted file names"
            )
        by_class: dict[int, list[tuple[float, Path]]] = {}
        for path, row in zip(files, matrix, strict=True):
            label = max(range(len(row)), key=row.__getitem__)
            by_class.setdefault(label, []).append((row[label], path))
        chosen = []
        for label, items in sorted(by_class.items()):
            items.sort(key=lambda item: (-item[0], item[1].name))
            chosen += [(path, label, conf) for conf, path in items[:top_k]]
        plan[method] = chosen
    rows = []
    with staged_dir(out, force=force) as tmp:
        for method, chosen in plan.items():
            (tmp / method).mkdir()
            for path, label, conf in chosen:
                copy_file(path, tmp / method / path.name)
                rows.append({"method": method, "file": path.name, "label": label,
                             "confidence": conf})  # fmt: skip
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["method", "file", "label", "confidence"])
        writer.writeheader()
        writer.writerows(rows)
        write_text(tmp / "labels.csv", buffer.getvalue())
    return {method: len(chosen) for method, chosen in plan.items()}
