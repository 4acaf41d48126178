"""What a wav file holds, read from its RIFF header with the standard library alone.

``build-hits`` checks every clip before it copies anything: a text file named ``.wav``, a
folder named ``x.wav``, a wav cut short (its ``data`` chunk promising more bytes than the
file holds) or one at another sample rate would otherwise reach raters as a broken player.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import MosError

# WAVE format codes a browser plays: PCM, IEEE float, and WAVE_FORMAT_EXTENSIBLE around them.
_PLAYABLE = {1: "PCM", 3: "float", 0xFFFE: "extensible"}


@dataclass(frozen=True)
class WavInfo:
    sample_rate: int
    channels: int
    bits: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def wav_info(path: Path) -> WavInfo:
    """The header of ``path``, checked against the file's size.

    Raises:
        MosError: ``path`` is not a regular file, not a RIFF/WAVE file, lacks its ``fmt`` or
            ``data`` chunk, uses an encoding browsers do not play, or is cut short.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise MosError(f"{path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise MosError(f"{path}: not a file (a folder or device named .wav?)")
    size = os.stat(path).st_size
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                raise MosError(f"{path}: not a wav file (no RIFF/WAVE header)")
            fmt: tuple[int, int, int, int, int] | None = None
            while True:
                chunk = handle.read(8)
                if len(chunk) < 8:
                    raise MosError(f"{path}: no data chunk (an empty or damaged wav)")
                name, length = chunk[:4], int.from_bytes(chunk[4:], "little")
                if name == b"fmt ":
                    body = handle.read(length)
                    if len(body) < 16:
                        raise MosError(f"{path}: damaged fmt chunk")
                    code = int.from_bytes(body[0:2], "little")
                    channels = int.from_bytes(body[2:4], "little")
                    rate = int.from_bytes(body[4:8], "little")
                    align = int.from_bytes(body[12:14], "little")
                    bits = int.from_bytes(body[14:16], "little")
                    fmt = (code, channels, rate, align, bits)
                    if length & 1:
                        handle.seek(1, 1)
                elif name == b"data":
                    if fmt is None:
                        raise MosError(f"{path}: data before its fmt chunk (a damaged wav)")
                    code, channels, rate, align, bits = fmt
                    if code not in _PLAYABLE:
                        raise MosError(
                            f"{path}: wave format code {code:#x}, which browsers do not play "
                            "(use PCM or float)"
                        )
                    if channels < 1 or rate < 1 or align < 1:
                        raise MosError(
                            f"{path}: damaged fmt chunk ({channels} channels, {rate} Hz)"
                        )
                    available = size - handle.tell()
                    if length != 0xFFFFFFFF and available < length:
                        raise MosError(
                            f"{path}: truncated: its header promises {length // align} frames "
                            f"but the file holds {max(0, available) // align}"
                        )
                    frames = min(length, available) if length != 0xFFFFFFFF else available
                    if frames // align == 0:
                        raise MosError(f"{path}: holds no audio (0 frames)")
                    return WavInfo(rate, channels, bits, frames // align)
                else:
                    handle.seek(length + (length & 1), 1)
    except OSError as exc:
        raise MosError(f"{path}: cannot read it ({exc.strerror})") from None
