"""Reading and writing wav files (soundfile), mixing down and resampling."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from .errors import DataError

ResampleRule = Literal["resample", "refuse"]


def check_wav_length(path: Path) -> None:
    """Refuse a RIFF/WAVE file cut short: its ``data`` chunk promises more bytes than the file
    holds (libsndfile quietly reads what is there, and a loader would pad the rest).

    Raises:
        DataError: naming the file and both lengths.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return
            size = path.stat().st_size
            align = 0
            while True:
                chunk = handle.read(8)
                if len(chunk) < 8:
                    return
                name, length = chunk[:4], int.from_bytes(chunk[4:], "little")
                if name == b"fmt ":
                    fmt = handle.read(min(length, 16))
                    align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else 0
                    handle.seek(length - len(fmt) + (length & 1), 1)
                elif name == b"data":
                    if length in (0, 0xFFFFFFFF) or not align:  # streamed: size unknown
                        return
                    available = size - handle.tell()
                    if available < length:
                        raise DataError(
                            f"{path}: truncated: its header promises {length // align} frames "
                            f"but the file holds {max(0, available) // align}; replace or "
                            "delete it"
                        )
                    return
                else:
                    handle.seek(length + (length & 1), 1)
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror})") from None


def audio_info(path: Path) -> tuple[int, int]:
    """``(frames, sample_rate)`` of an audio file, without decoding it.

    Raises:
        DataError: the file is unreadable, empty or (a wav) cut short.
    """
    check_wav_length(path)
    try:
        info = sf.info(os.fsencode(path))
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
    check_wav_length(path)
    try:
        data, rate = sf.read(
            os.fsencode(path), start=start, frames=frames, dtype="float32", always_2d=True
        )
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise DataError(f"{path}: unreadable audio ({exc}); replace or delete it") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: the file holds no audio (0 frames); replace or delete it")
    if not np.isfinite(data).all():
        raise DataError(f"{path}: holds non-finite samples (NaN or inf); replace or delete it")
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
