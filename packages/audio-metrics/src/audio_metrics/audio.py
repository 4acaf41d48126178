"""Clips for the classifier: a folder of wavs, or a dataset plugin's split.

Everything becomes mono float32 at the classifier's rate, ``clip_len`` samples (zero-padded at
the end or cut), in batches.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import MetricsError

#: ``(waveforms (batch, clip_len), labels (batch,), names)``; labels are -1 when unknown.
Batch = tuple[Tensor, Tensor, list[str]]


def fit(x: Tensor, length: int) -> Tensor:
    if x.shape[-1] >= length:
        return x[..., :length]
    return torch.nn.functional.pad(x, (0, length - x.shape[-1]))


def wav_files(folder: Path) -> list[Path]:
    """The ``.wav`` files directly inside ``folder``, sorted by name."""
    if not folder.is_dir():
        raise MetricsError(f"{folder}: no such folder of samples")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
    if not files:
        raise MetricsError(f"{folder}: holds no .wav files")
    return files


def read_wav(path: Path, sample_rate: int) -> Tensor:
    """Mono float32 samples of ``path`` at ``sample_rate`` (resampled, with a notice)."""
    import soundfile as sf

    try:
        data, rate = sf.read(os.fsencode(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise MetricsError(f"{path}: unreadable audio ({exc})") from None
    if data.shape[0] == 0:
        raise MetricsError(f"{path}: the file holds no audio (0 frames)")
    if not np.isfinite(data).all():
        raise MetricsError(f"{path}: holds non-finite samples (NaN or inf); no metric applies")
    x = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    if rate != sample_rate:
        import torchaudio.functional as AF

        print(f"note: resampling {path} from {rate} Hz to {sample_rate} Hz", file=sys.stderr)
        x = AF.resample(x, rate, sample_rate)
    return x


def folder_batches(
    files: Sequence[Path], *, sample_rate: int, clip_len: int, batch: int
) -> Iterator[Batch]:
    for start in range(0, len(files), batch):
        chunk = files[start : start + batch]
        waves = torch.stack([fit(read_wav(p, sample_rate), clip_len) for p in chunk])
        yield waves, torch.full((len(chunk),), -1, dtype=torch.long), [p.name for p in chunk]


def split_item(dataset: Any, data: Any, index: int) -> tuple[Tensor, int]:
    """Waveform and label of one dataset item: the raw audio when the dataset offers it
    (audio-data's ``audio(index)``), else its codes decoded through the dataset's encoding."""
    if hasattr(dataset, "audio"):
        wave: Tensor = dataset.audio(index)
        files = getattr(dataset, "files", None)
        label = int(files[index][1]) if files is not None else int(dataset[index][1])
        return wave.float(), label
    codes, label = dataset[index]
    return data.encoding.decode(codes).float(), int(label)


def split_batches(
    data: Any, split: str, *, clip_len: int, batch: int, progress: Callable[[int], object]
) -> Iterator[Batch]:
    """Batches of a built dataset's split (``data.splits[split]``)."""
    dataset = data.splits[split]
    n = len(dataset)
    for start in range(0, n, batch):
        items = [split_item(dataset, data, i) for i in range(start, min(n, start + batch))]
        waves = torch.stack([fit(w, clip_len) for w, _ in items])
        labels = torch.tensor([label for _, label in items], dtype=torch.long)
        progress(len(items))
        yield waves, labels, [f"{split}/{i}" for i in range(start, start + len(items))]


def load_split(
    data: Any, split: str, *, clip_len: int, progress: Callable[[int], object]
) -> tuple[Tensor, Tensor]:
    """A whole split in memory as 16-bit integers (half the memory of float32) and labels."""
    waves, labels = [], []
    for w, y, _ in split_batches(data, split, clip_len=clip_len, batch=256, progress=progress):
        waves.append((w.clamp(-1, 1) * 32767).round().to(torch.int16))
        labels.append(y)
    if not waves:
        raise MetricsError(f"dataset {data.name!r}: split {split!r} is empty")
    return torch.cat(waves), torch.cat(labels)


def int16_to_float(x: Tensor) -> Tensor:
    return x.float() / 32767.0
