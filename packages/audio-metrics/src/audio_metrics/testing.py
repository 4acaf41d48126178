"""Test helpers: a labelled, in-memory ``tones`` dataset plugin, so the classifier and the
``evaluate`` command can be tested without any dataset package.

Register it with ``audio-run --plugin audio_metrics.testing``. Class ``c`` is a harmonic tone
at ``200 * 1.25**c`` Hz with a random onset, length, amplitude and a little noise; every clip
is a pure function of (class, index, seed).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attrs import field, frozen
from attrs import validators as v

from audio_core import DatasetSpec, hookimpl


@frozen(kw_only=True)
class ToneConfig:
    """``tones``: ``per_class`` clips per class in train, a fifth as many in val and test."""

    classes: int = field(default=4, validator=v.ge(2))
    per_class: int = field(default=20, validator=v.ge(5))
    sample_rate: int = field(default=16000, validator=v.gt(0))
    sample_len: int = field(default=16000, validator=v.gt(0))
    seed: int = 0


def tone(label: int, index: int, *, config: ToneConfig) -> Any:
    """One clip (float32 tensor) of class ``label``."""
    import torch

    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + label * 10_007 + index)
    n, rate = config.sample_len, config.sample_rate
    length = int(n * (0.3 + 0.4 * float(torch.rand((), generator=gen))))
    start = int((n - length) * float(torch.rand((), generator=gen)))
    t = torch.arange(length, dtype=torch.float64) / rate
    f0 = 200.0 * 1.25**label
    wave = sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in (1, 2, 3))
    envelope = torch.sin(math.pi * torch.arange(length, dtype=torch.float64) / length)
    amp = 0.2 + 0.5 * float(torch.rand((), generator=gen))
    x = torch.zeros(n, dtype=torch.float64)
    x[start : start + length] = amp * envelope * wave / 1.9
    x += 0.01 * torch.randn(n, generator=gen, dtype=torch.float64)
    return x.clamp(-1, 1).float()


class ToneSplit:
    """A split: ``audio(i)`` is the waveform, ``self[i]`` the 8-bit linear codes and label."""

    def __init__(self, config: ToneConfig, items: list[tuple[int, int]]) -> None:
        self.config, self.items = config, items

    def __len__(self) -> int:
        return len(self.items)

    def audio(self, index: int) -> Any:
        label, i = self.items[index]
        return tone(label, i, config=self.config)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        x = self.audio(index)
        codes = ((x.clamp(-1, 1) + 1) * 127.5).round().long()
        return codes, self.items[index][0]


@frozen
class _Encoding:
    bits: int = 8

    def decode(self, q: Any) -> Any:
        return q.float() / 127.5 - 1


@frozen
class ToneData:
    """What a dataset plugin returns: splits, class names, rate, length, encoding."""

    name: str
    splits: dict[str, ToneSplit]
    labels: tuple[str, ...]
    sample_rate: int
    sample_len: int
    encoding: _Encoding


def build_tones(config: ToneConfig) -> ToneData:
    per_other = max(2, config.per_class // 5)
    ranges = {
        "train": range(config.per_class),
        "val": range(config.per_class, config.per_class + per_other),
        "test": range(config.per_class + per_other, config.per_class + 2 * per_other),
    }
    splits = {
        name: ToneSplit(config, [(c, i) for i in r for c in range(config.classes)])
        for name, r in ranges.items()
    }
    labels = tuple(f"tone{c}" for c in range(config.classes))
    return ToneData("tones", splits, labels, config.sample_rate, config.sample_len, _Encoding())


@hookimpl
def register_datasets() -> Iterator[DatasetSpec]:
    yield DatasetSpec(
        name="tones",
        config_cls=ToneConfig,
        target="audio_metrics.testing:build_tones",
        summary="test data: labelled harmonic tones, one pitch per class (in memory)",
    )


def write_samples(folder: Path, clips: list[Any], loglik: list[float], rate: int = 16000) -> None:
    """Write clips as ``NNNN.wav`` plus a ``manifest.json`` like ``audio-run generate``'s."""
    import json

    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (clip, ll) in enumerate(zip(clips, loglik, strict=True)):
        name = f"{i:04d}.wav"
        sf.write(str(folder / name), clip.numpy(), rate, subtype="PCM_16")
        rows.append({"file": name, "log_likelihood": float(ll)})
    (folder / "manifest.json").write_text(json.dumps({"settings": {}, "clips": rows}))
