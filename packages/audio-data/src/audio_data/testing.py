"""Helpers for tests (here and in plugins): write small wavs and SC09-layout folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .synth import WORDS


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """Write 16-bit PCM (mono ``(n,)`` or multichannel ``(n, channels)``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(os.fsencode(path), samples, rate, subtype="PCM_16")
    return path


def tone(n: int, freq: float = 440.0, rate: int = 16000, amp: float = 0.5) -> np.ndarray:
    """``n`` samples of a sine at ``freq`` Hz."""
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def make_sc09_layout(
    root: Path, *, extra_words: tuple[str, ...] = (), lengths: tuple[int, ...] = (16000,)
) -> Path:
    """Three clips per word (``spk0`` train, ``spk1`` validation, ``spk2`` test), tones whose
    pitch depends on the word, with ``validation_list.txt`` and ``testing_list.txt``."""
    val, test = [], []
    for i, word in enumerate(WORDS + extra_words):
        for k in range(3):
            n = lengths[(i + k) % len(lengths)]
            write_wav(root / word / f"spk{k}_nohash_0.wav", tone(n, 200 + 50 * i))
        val.append(f"{word}/spk1_nohash_0.wav")
        test.append(f"{word}/spk2_nohash_0.wav")
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    return root
