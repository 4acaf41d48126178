"""``audio-run evaluate``: the SC09 protocol over a folder of samples and/or the dataset.

Reference set: the training split's features (FID and NDB compare against them; AM uses their
mean prediction as the class prior). Rows: ``samples`` (the folder, optionally likelihood-
thresholded), and with ``dataset_metrics`` the ``train`` and ``test`` splits themselves.
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TextIO

import numpy as np
from numpy.typing import NDArray

from .errors import MetricsError
from .suite import Direction, Features, Metric
from .threshold import Cutoffs, threshold


def read_loglik(folder: Path, names: Sequence[str]) -> NDArray[np.float64]:
    """Each sample's log-likelihood from the generation manifest (``manifest.json``)."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise MetricsError(
            f"{manifest}: not found; thresholding needs the log-likelihoods that audio-run "
            "generate writes there"
        )
    try:
        clips = json.loads(manifest.read_text())["clips"]
        if clips and all(c.get("log_likelihood") is None for c in clips):
            raise MetricsError(
                f"{manifest}: its samples have no likelihoods (a diffusion model's); evaluate "
                "them without --threshold, as the non-autoregressive protocol does"
            )
        by_name = {str(c["file"]): float(c["log_likelihood"]) for c in clips}
    except (ValueError, KeyError, TypeError) as exc:
        raise MetricsError(f"{manifest}: not a generation manifest ({exc})") from None
    missing = [n for n in names if n not in by_name]
    if missing:
        raise MetricsError(
            f"{manifest}: no log_likelihood for {len(missing)} file(s), e.g. {missing[0]}"
        )
    return np.array([by_name[n] for n in names], dtype=np.float64)


def compute_row(
    metrics: Mapping[str, Metric], generated: Features, reference: Features, seed: int
) -> dict[str, float]:
    """Every metric of one set; each metric draws from its own seeded generator."""
    row: dict[str, float] = {"n": float(len(generated))}
    for i, (name, metric) in enumerate(metrics.items()):
        try:
            row.update(metric.compute(generated, reference, np.random.default_rng([seed, i])))
        except ValueError as exc:
            print(f"note: {name} not computed for {len(generated)} samples: {exc}", file=sys.stderr)
            row.update(dict.fromkeys(metric.directions, math.nan))
    return row


def directions_of(metrics: Mapping[str, Metric]) -> dict[str, Direction]:
    out: dict[str, Direction] = {}
    for metric in metrics.values():
        out.update(metric.directions)
    return out


def metric_reporting(metrics: Mapping[str, Metric], key: str) -> Metric:
    """The metric that reports ``key`` (the thresholding objective).

    Raises:
        MetricsError: none does (the message lists what can be chosen).
    """
    for metric in metrics.values():
        if key in metric.directions:
            return metric
    known = ", ".join(sorted(directions_of(metrics)))
    raise MetricsError(f"--threshold-metric {key!r}: no metric reports it (known: {known})")


def run_threshold(
    metric: Metric,
    samples: Features,
    loglik: NDArray[np.float64],
    reference: Features,
    *,
    key: str,
    seed: int,
    fixed: tuple[float, float] | None,
) -> tuple[Cutoffs, Features]:
    try:
        return threshold(
            samples,
            loglik,
            metric=metric,
            key=key,
            reference=reference,
            rng=np.random.default_rng([seed, 1_000_003]),
            fixed=fixed,
        )
    except ValueError as exc:
        raise MetricsError(f"thresholding: {exc}") from None


def format_table(
    rows: Mapping[str, Mapping[str, float]], directions: Mapping[str, str]
) -> list[str]:
    """The rows as an aligned text table, one column per metric value."""
    keys = [k for k in directions if any(k in r for r in rows.values())]
    header = ["set", "n", *(f"{k} {'(+)' if directions[k] == 'higher' else '(-)'}" for k in keys)]
    body = [
        [name, f"{int(row['n'])}", *(_fmt(row.get(k, math.nan)) for k in keys)]
        for name, row in rows.items()
    ]
    table = [header, *body]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in table
    ]
    lines.append("(+) higher is better, (-) lower is better")
    return lines


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    if float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value)}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.3f}"


def class_shares(probs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Share of each predicted class (argmax)."""
    counts = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
    out: NDArray[np.float64] = counts / max(1, counts.sum())
    return out


def write_class_chart(
    path: Path, labels: Sequence[str], shares: Mapping[str, NDArray[np.float64]]
) -> None:
    """A grouped bar chart (PNG) of per-class shares, one colour per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from audio_core.io import atomic_write

    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    width = 0.8 / max(1, len(shares))
    x = np.arange(len(labels))
    for i, (name, share) in enumerate(shares.items()):
        ax.bar(x + (i - (len(shares) - 1) / 2) * width, share, width, label=name)
    ax.axhline(1 / len(labels), color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(x, list(labels), rotation=0)
    ax.set_ylabel("share of clips")
    ax.set_title("Class shares (train: true labels; other sets: classifier's argmax)")
    ax.legend(frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)

    def write(handle: IO[bytes]) -> None:
        handle.write(buffer.getvalue())

    atomic_write(path, write)


def write_probs(path: Path, features: Features) -> None:
    """The probabilities as a ``.npy`` (float64, ``(n, classes)``), rows in ``features``'
    order (the folder's sorted file names), written atomically."""
    order = sorted(range(len(features)), key=lambda i: features.names[i])
    if order != list(range(len(features))):
        raise ValueError("features must be in sorted file-name order")
    from audio_core.io import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)

    def write(handle: IO[bytes]) -> None:
        np.save(handle, np.ascontiguousarray(features.probs, dtype=np.float64))

    atomic_write(path, write)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    from audio_core.io import write_text

    write_text(path, json.dumps(_clean(data), indent=2) + "\n")


def _clean(value: Any) -> Any:
    """JSON-ready: NaN -> null, NumPy scalars and arrays -> Python."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_lines(lines: Sequence[str], out: TextIO) -> None:
    for line in lines:
        print(line, file=out)
