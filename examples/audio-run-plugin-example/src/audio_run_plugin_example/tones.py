"""``example-tones``: deterministic pure tones, generated on the fly (nothing to download)."""

from __future__ import annotations

import math

import attrs
import torch
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


def build(config: TonesConfig) -> Tones:
    """The dataset a :class:`TonesConfig` describes (the record's ``target``)."""
    return Tones(**attrs.asdict(config, recurse=False))
