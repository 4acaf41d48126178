"""Quantisation of waveforms to ``2**bits`` classes, and back: the reference's and a standard one.

``scheme="reference"`` (the default) reproduces the SaShiMi reference's audio dataloaders bit
for bit (checked against codes its own code produced), because checkpoints, likelihoods and
samples are only comparable with the paper's on the same classes:

- each clip (the whole waveform given, last axis) is first min-max scaled: to ``[-1, 1]`` for
  mu-law, ``[0, 1]`` for linear, as ``lo + (hi - lo) (x - min) / (max - min + 1e-6)``;
- mu-law: ``y = sign(a) log1p(mu |a + 1e-8|) / log1p(mu)`` with ``mu = 2**bits - 1``, then
  ``e = (y + 1) / 2``; linear: ``e = a``;
- codes ``q = trunc(e (2**bits - 0.01) + 0.005)`` (truncation, not rounding);
- decoding: ``x = q / 2**(bits - 1) - 1`` (linear), then for mu-law
  ``sign(x) ((1 + mu)**|x| - 1) / mu``.

All of it in float32, in the reference's order of operations. Two consequences worth
knowing: a silent clip encodes to code 0 (its min-max span is zero), and min-max scaling is
not undone by decoding.

``scheme="standard"`` is the textbook companding with rounding, no scaling, exactly
invertible at -1, 0 and 1 (``0 -> 2**(bits - 1)``): mu-law
``q = floor((f + 1) / 2 mu + 0.5)`` with ``f = sign(x) ln(1 + mu |x|) / ln(1 + mu)``
(``torchaudio.functional.mu_law_encoding``), decoded from ``f = 2 q / mu - 1``; linear the
same without the companding. Inputs are clamped to ``[-1, 1]``.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

Quantization = Literal["mu-law", "linear"]
QUANTIZATIONS: tuple[Quantization, ...] = get_args(Quantization)
Scheme = Literal["reference", "standard"]
SCHEMES: tuple[Scheme, ...] = get_args(Scheme)


def _mu(bits: int) -> int:
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in [1, 16]; got {bits}")
    return int(2**bits - 1)


def q_zero(bits: int = 8) -> int:
    """The code of silence that starts every sequence: ``2**(bits - 1)``."""
    _mu(bits)
    return 1 << (bits - 1)


# -- the reference's scheme -----------------------------------------------------------------
def reference_minmax(x: Tensor, lo: float, hi: float) -> Tensor:
    """Scale each clip (last axis) to ``[lo, hi]`` with the reference's ``+1e-6`` guard."""
    x = x.float()
    low = x.amin(-1, keepdim=True)
    high = x.amax(-1, keepdim=True)
    return lo + (hi - lo) * (x - low) / (high - low + 1e-6)


def _truncate(e: Tensor, bits: int) -> Tensor:
    return (e * ((1 << bits) - 0.01) + 0.01 / 2).long()


def reference_mu_law_encode(x: Tensor, bits: int = 8) -> Tensor:
    mu = torch.tensor(float(_mu(bits)))
    a = reference_minmax(x, -1.0, 1.0)
    y = torch.sign(a) * (torch.log1p(mu * torch.abs(a + 1e-8)) / torch.log1p(mu))
    return _truncate((y + 1) / 2, bits)


def reference_linear_encode(x: Tensor, bits: int = 8) -> Tensor:
    _mu(bits)
    return _truncate(reference_minmax(x, 0.0, 1.0), bits)


def reference_linear_decode(q: Tensor, bits: int = 8) -> Tensor:
    _mu(bits)
    return q.float() / ((1 << bits) / 2) - 1


def reference_mu_law_decode(q: Tensor, bits: int = 8) -> Tensor:
    mu = _mu(bits)
    x = reference_linear_decode(q, bits)
    return torch.sign(x) * ((1 + mu) ** torch.abs(x) - 1) / mu


# -- the standard scheme --------------------------------------------------------------------
def mu_law_encode(x: Tensor, bits: int = 8) -> Tensor:
    """Standard mu-law: ``x`` in ``[-1, 1]`` (clamped) -> ``int64`` codes."""
    mu = _mu(bits)
    x = x.clamp(-1, 1).double()
    f = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return torch.floor((f + 1) / 2 * mu + 0.5).long()


def mu_law_decode(q: Tensor, bits: int = 8) -> Tensor:
    """Standard mu-law codes -> waveform in ``[-1, 1]`` (float32)."""
    mu = _mu(bits)
    f = 2 * q.double() / mu - 1
    return (torch.sign(f) * (torch.pow(1 + mu, f.abs()) - 1) / mu).float()


def linear_encode(x: Tensor, bits: int = 8) -> Tensor:
    """Standard linear: ``x`` in ``[-1, 1]`` (clamped) -> ``int64`` codes, uniform steps."""
    mu = _mu(bits)
    return torch.floor((x.clamp(-1, 1).double() + 1) / 2 * mu + 0.5).long()


def linear_decode(q: Tensor, bits: int = 8) -> Tensor:
    """Standard linear codes -> waveform in ``[-1, 1]`` (float32)."""
    return (2 * q.double() / _mu(bits) - 1).float()


# -- by name --------------------------------------------------------------------------------
def _check(quantization: str, scheme: str) -> None:
    if quantization not in QUANTIZATIONS:
        allowed = ", ".join(QUANTIZATIONS)
        raise ValueError(f"quantization must be one of {allowed}; got {quantization!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}; got {scheme!r}")


def encode(
    x: Tensor, *, quantization: Quantization, bits: int = 8, scheme: Scheme = "reference"
) -> Tensor:
    """Quantise each clip of ``x`` (last axis) with the named quantisation and scheme."""
    _check(quantization, scheme)
    if scheme == "reference":
        if quantization == "mu-law":
            return reference_mu_law_encode(x, bits)
        return reference_linear_encode(x, bits)
    return mu_law_encode(x, bits) if quantization == "mu-law" else linear_encode(x, bits)


def decode(
    q: Tensor, *, quantization: Quantization, bits: int = 8, scheme: Scheme = "reference"
) -> Tensor:
    """Codes back to waveform values (float32; the reference's min-max scaling stays)."""
    _check(quantization, scheme)
    if scheme == "reference":
        if quantization == "mu-law":
            return reference_mu_law_decode(q, bits)
        return reference_linear_decode(q, bits)
    return mu_law_decode(q, bits) if quantization == "mu-law" else linear_decode(q, bits)
