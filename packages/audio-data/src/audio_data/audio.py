"""Reading and writing wav files (soundfile), mixing down and resampling."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from .errors import DataError

ResampleRule = Literal["resample", "refuse"]


def audio_info(path: Path) -> tuple[int, int]:
    """``(frames, sample_rate)`` of an audio file, without decoding it."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise DataError(f"{path}: unreadable audio ({exc}); replace or delete it") from None
    if info.frames == 0:
        raise DataError(f"{path}: the file holds no audio (0 frames); replace or delete it")
    return int(info.frames), int(info.samplerate)


def load_audio(
    path: Path,
    *,
    sample_rate: int,
    resample: ResampleRule = "resample",
    start: int = 0,
    frames: int = -1,
) -> Tensor:
    """Mono float32 samples of ``path`` in ``[-1, 1]`` at ``sample_rate``.

    Stereo (or more) channels are averaged. A file at another rate is resampled (with a
    notice on stderr, once per file) or, with ``resample="refuse"``, refused. ``start`` and
    ``frames`` select a window, counted at the file's own rate.
    """
    try:
        data, rate = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise DataError(f"{path}: unreadable audio ({exc}); replace or delete it") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: the file holds no audio (0 frames); replace or delete it")
    x = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    if rate != sample_rate:
        if resample == "refuse":
            raise DataError(
                f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz; convert the file or "
                "set dataset.resample=resample"
            )
        import torchaudio.functional as AF

        print(f"note: resampling {path} from {rate} Hz to {sample_rate} Hz", file=sys.stderr)
        x = AF.resample(x, rate, sample_rate)
    return x
