"""Small wavs and method folders for tests and examples (standard library only)."""

from __future__ import annotations

import wave
from pathlib import Path


def write_wav(path: Path, value: int = 0, *, rate: int = 16000, frames: int = 160) -> Path:
    """A mono 16-bit wav whose samples encode ``value`` (so copies can be told apart)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(bytes([value % 256, value // 256 % 256]) * frames)
    return path


def make_input(root: Path, methods: list[str], n: int, *, pattern: str = "clip{:02d}.wav") -> Path:
    """``root/<method>/<pattern % i>`` for ``n`` clips per method."""
    for m_index, method in enumerate(methods):
        for i in range(n):
            write_wav(root / method / pattern.format(i), value=m_index * 100 + i)
    return root
