"""``example-tones``: deterministic pure tones, generated on the fly (nothing to download).

:func:`build` returns what ``audio-run train`` needs from a dataset
(``audio_core.protocols.AudioDataset``): ``split(name)`` datasets of ``(codes, label)``,
``sample_rate``, ``sample_len`` and an ``encoding`` (8-bit linear quantisation here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .config import TonesConfig


class Tones(Dataset[torch.Tensor]):
    """Pure tones; item ``i`` is ``0.5 * sin(2 pi f_i t)``, a float32 tensor ``(sample_len,)``.

    ``f_i`` is log-uniform in ``[min_freq, max_freq)``, from a generator seeded by
    ``(seed, i)``: the same in every process and worker, whatever the access order.
    """

    def __init__(
        self,
        *,
        n_examples: int,
        sample_len: int,
        sample_rate: int,
        min_freq: float,
        max_freq: float,
        seed: int,
    ) -> None:
        self.n_examples = n_examples
        self.sample_len = sample_len
        self.sample_rate = sample_rate
        self.min_freq = min_freq
        self.max_freq = max_freq
        self.seed = seed

    def __len__(self) -> int:
        return self.n_examples

    def frequency(self, index: int) -> float:
        """The frequency of item ``index`` in Hz."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        return float(self.min_freq * (self.max_freq / self.min_freq) ** u)

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.n_examples:
            raise IndexError(f"index {index} out of range for {self.n_examples} tones")
        t = torch.arange(self.sample_len, dtype=torch.float64) / self.sample_rate
        return (0.5 * torch.sin(2 * math.pi * self.frequency(index) * t)).float()


@attrs.frozen
class LinearEncoding:
    """``bits``-bit linear quantisation of ``[-1, 1]``: ``q = round((x + 1) / 2 (2^b - 1))``."""

    bits: int = 8

    def encode(self, x: Tensor) -> Tensor:
        levels = 2**self.bits - 1
        return torch.round((x.clamp(-1, 1).double() + 1) / 2 * levels).long()

    def decode(self, q: Tensor) -> Tensor:
        values: Tensor = (2 * q.double() / (2**self.bits - 1) - 1).float()
        return values


class ToneCodes(Dataset[tuple[Tensor, int]]):
    """Some of the tones, quantised: items ``(codes, -1)`` (unlabelled)."""

    def __init__(self, tones: Tones, indices: Sequence[int], encoding: LinearEncoding) -> None:
        self.tones, self.indices, self.encoding = tones, list(indices), encoding

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.encoding.encode(self.tones[self.indices[index]]), -1


class TonesData:
    """The splits of the tones: every tenth tone for validation, the next for test."""

    def __init__(self, tones: Tones) -> None:
        self.tones, self.encoding = tones, LinearEncoding(8)
        self.sample_rate, self.sample_len = tones.sample_rate, tones.sample_len
        by_split: dict[str, list[int]] = {"train": [], "val": [], "test": []}
        for i in range(len(tones)):
            by_split["val" if i % 10 == 8 else "test" if i % 10 == 9 else "train"].append(i)
        self.splits = {k: ToneCodes(tones, v, self.encoding) for k, v in by_split.items()}

    def split(self, name: str) -> ToneCodes:
        if name not in self.splits:
            raise ValueError(f"split must be train, val or test; got {name!r}")
        return self.splits[name]


def build(config: TonesConfig) -> TonesData:
    """The dataset a :class:`TonesConfig` describes (the record's ``target``)."""
    return TonesData(Tones(**attrs.asdict(config, recurse=False)))
