"""The run folder's logs: the metrics log (JSON lines) and the loss curve (SVG)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from audio_core.errors import TrainingError
from audio_core.io import dumps_json, write_text


class MetricsLog:
    """Append-only JSON lines; each line is flushed, so a killed run keeps what it logged.

    Non-finite numbers are written as ``null`` (JSON has no ``NaN``). A last line torn by a
    killed run is skipped when reading and dropped by :meth:`truncate_after`. With a
    TensorBoard ``SummaryWriter``, every numeric field of a record with a ``step`` is also
    written as a scalar.
    """

    def __init__(self, path: Path, tensorboard: Any = None) -> None:
        self.path, self.tensorboard = path, tensorboard
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: Mapping[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(dumps_json(dict(record)) + "\n")
        if self.tensorboard is not None and "step" in record:
            for key, value in record.items():
                if key not in {"step", "epoch"} and isinstance(value, int | float):
                    self.tensorboard.add_scalar(key, value, record["step"])
            self.tensorboard.flush()

    def read(self) -> list[dict[str, Any]]:
        """Every record; a torn (unparsable) last line is skipped.

        Raises:
            TrainingError: a line before the last is not JSON (the file was edited or
                damaged), naming the file and the line.
        """
        if not self.path.exists():
            return []
        lines = [line for line in self.path.read_text(errors="replace").splitlines()]
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):  # a killed run's half-written last line
                    break
                raise TrainingError(
                    [f"{self.path}:{number}: not a JSON line; repair or delete the file"]
                ) from None
        return records

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after ``step`` (a resumed run repeats those steps) and a torn
        last line."""
        kept = [r for r in self.read() if (r.get("step") or 0) <= step]
        write_text(self.path, "".join(dumps_json(r) + "\n" for r in kept))


def _title(unit: str) -> str:
    titles = {"mse": "noise-prediction MSE (epsilon)", "loss": "loss"}
    return titles.get(unit, f"loss ({unit})")


def loss_curve_svg(
    records: Iterable[Mapping[str, Any]],
    *,
    width: int = 640,
    height: int = 360,
    unit: str = "loss",
) -> str:
    """An SVG plot of training loss and validation NLL (bits per sample) against steps, or,
    for a model with another objective (``train_loss`` / ``val_loss``: DiffWave's noise
    MSE), of that, titled by its ``unit`` (the model's ``loss_unit``)."""
    records = list(records)
    bits = any(r.get("train_bits") is not None or r.get("val_bits") is not None for r in records)
    train_key, val_key = ("train_bits", "val_bits") if bits else ("train_loss", "val_loss")
    train = [(r["step"], r[train_key]) for r in records if r.get(train_key) is not None]
    val = [(r["step"], r[val_key]) for r in records if r.get(val_key) is not None]
    points = [p for p in train + val if math.isfinite(p[1])]
    pad = 48
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"/>'
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def xy(step: float, value: float) -> str:
        x = pad + (step - x0) / (x1 - x0) * (width - 2 * pad)
        y = height - pad - (value - y0) / (y1 - y0) * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    def line(series: list[tuple[float, float]], colour: str) -> str:
        pts = " ".join(xy(s, v) for s, v in series if math.isfinite(v))
        return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>'

    text = 'font-family="sans-serif" font-size="12"'
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
            f'<rect width="{width}" height="{height}" fill="white"/>',
            f'<text x="{pad}" y="20" {text}>{"bits per sample" if bits else _title(unit)}: '
            "train (blue), validation (orange)</text>",
            f'<text x="4" y="{pad}" {text}>{y1:.3f}</text>',
            f'<text x="4" y="{height - pad}" {text}>{y0:.3f}</text>',
            f'<text x="{pad}" y="{height - 16}" {text}>step {x0}</text>',
            f'<text x="{width - pad - 60}" y="{height - 16}" {text}>step {x1}</text>',
            line(train, "#1f77b4"),
            line(val, "#ff7f0e"),
            "</svg>",
            "",
        ]
    )
