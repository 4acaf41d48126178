"""Quantisation of waveforms in ``[-1, 1]`` to ``2**bits`` classes, and back.

- ``mu-law`` (the standard companding, as ``torchaudio.functional.mu_law_encoding`` defines
  it): ``f = sign(x) ln(1 + mu |x|) / ln(1 + mu)`` with ``mu = 2**bits - 1``, then
  ``q = floor((f + 1) / 2 * mu + 0.5)``. Decoding inverts ``f = 2 q / mu - 1``.
- ``linear``: ``q = floor((x + 1) / 2 * mu + 0.5)``, decoded as ``2 q / mu - 1``.

Both map ``-1 -> 0``, ``0 -> 2**(bits-1)`` and ``1 -> 2**bits - 1`` exactly.

``minmax=True`` is the reference implementation's variant: each example is first rescaled
to fill ``[-1, 1]`` (``2 (x - min) / (max - min) - 1``). Checkpoints trained on such inputs
expect it; it is off by default.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

Quantization = Literal["mu-law", "linear"]
QUANTIZATIONS: tuple[Quantization, ...] = get_args(Quantization)


def _mu(bits: int) -> int:
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in [1, 16]; got {bits}")
    return int(2**bits - 1)


def minmax_scale(x: Tensor) -> Tensor:
    """Rescale each example (last axis) to span ``[-1, 1]``; a constant example maps to 0."""
    lo = x.amin(-1, keepdim=True)
    hi = x.amax(-1, keepdim=True)
    span = hi - lo
    return torch.where(span > 0, 2 * (x - lo) / span.clamp_min(1e-12) - 1, torch.zeros_like(x))


def mu_law_encode(x: Tensor, bits: int = 8) -> Tensor:
    """``x`` in ``[-1, 1]`` (clamped) -> ``int64`` codes in ``[0, 2**bits - 1]``."""
    mu = _mu(bits)
    x = x.clamp(-1, 1).double()
    f = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return torch.floor((f + 1) / 2 * mu + 0.5).long()


def mu_law_decode(q: Tensor, bits: int = 8) -> Tensor:
    """Codes -> waveform in ``[-1, 1]`` (float32)."""
    mu = _mu(bits)
    f = 2 * q.double() / mu - 1
    return (torch.sign(f) * (torch.pow(1 + mu, f.abs()) - 1) / mu).float()


def linear_encode(x: Tensor, bits: int = 8) -> Tensor:
    """``x`` in ``[-1, 1]`` (clamped) -> ``int64`` codes, uniform steps."""
    mu = _mu(bits)
    return torch.floor((x.clamp(-1, 1).double() + 1) / 2 * mu + 0.5).long()


def linear_decode(q: Tensor, bits: int = 8) -> Tensor:
    """Codes -> waveform in ``[-1, 1]`` (float32)."""
    return (2 * q.double() / _mu(bits) - 1).float()


def _check(quantization: str) -> None:
    if quantization not in QUANTIZATIONS:
        allowed = ", ".join(QUANTIZATIONS)
        raise ValueError(f"quantization must be one of {allowed}; got {quantization!r}")


def encode(x: Tensor, *, quantization: Quantization, bits: int = 8, minmax: bool = False) -> Tensor:
    """Quantise ``x`` with the named scheme (optionally min-max scaled per example first)."""
    _check(quantization)
    if minmax:
        x = minmax_scale(x)
    return mu_law_encode(x, bits) if quantization == "mu-law" else linear_encode(x, bits)


def decode(q: Tensor, *, quantization: Quantization, bits: int = 8) -> Tensor:
    """Invert :func:`encode` (up to the quantisation step; min-max scaling is not undone)."""
    _check(quantization)
    return mu_law_decode(q, bits) if quantization == "mu-law" else linear_decode(q, bits)
