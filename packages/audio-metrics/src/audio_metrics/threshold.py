"""Likelihood thresholding for autoregressive models (the SaShiMi SC09 protocol).

An autoregressive model's least and most likely samples are often silence or noise; the
protocol drops both tails. The samples are split at random into two halves. On the *tuning*
half, every cut-off pair ``(lo, hi)`` on a grid of quantiles is scored by one metric on the
samples whose log-likelihood lies between the ``lo`` and ``hi`` quantiles; the best pair's
log-likelihood values are then applied to the *held-out* half, on which the metrics are
reported. ``fixed=(0.4, 0.95)`` skips the search: it is what the reference's tuning loop ends up
using, because it never updates its best score.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from attrs import frozen
from numpy.typing import NDArray

from .suite import Direction, Features, Metric

GRID_LO = tuple(round(0.05 * i, 2) for i in range(11))  # 0.00 .. 0.50
GRID_HI = tuple(round(0.5 + 0.05 * i, 2) for i in range(11))  # 0.50 .. 1.00
MIN_KEEP = 0.25


@frozen
class Cutoffs:
    """The chosen cut-offs and how they were found.

    Attributes:
        lo, hi: quantiles of the tuning half's log-likelihoods; samples below ``lo`` or above
            ``hi`` are dropped. ll_lo, ll_hi: the log-likelihood values they correspond to
            (what is applied to the held-out half).
        tuned: searched (True) or fixed. metric, direction: the tuning objective.
        score: the objective on the tuning half at the chosen cut-offs.
        n_tune, n_eval, n_kept: tuning half, held-out half, held-out samples kept.
        search: every candidate tried, ``(lo, hi, score)``.
    """

    lo: float
    hi: float
    ll_lo: float
    ll_hi: float
    tuned: bool
    metric: str
    direction: Direction
    score: float
    n_tune: int
    n_eval: int
    n_kept: int
    search: tuple[tuple[float, float, float], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "lo": self.lo,
            "hi": self.hi,
            "ll_lo": self.ll_lo,
            "ll_hi": self.ll_hi,
            "tuned": self.tuned,
            "metric": self.metric,
            "direction": self.direction,
            "score_on_tuning_half": self.score,
            "n_tune": self.n_tune,
            "n_eval": self.n_eval,
            "n_kept": self.n_kept,
            "search": [list(c) for c in self.search],
        }


def _bounds(ll: NDArray[np.float64], lo: float, hi: float) -> tuple[float, float]:
    low = -math.inf if lo <= 0 else float(np.quantile(ll, lo))
    high = math.inf if hi >= 1 else float(np.quantile(ll, hi))
    return low, high


def _keep(ll: NDArray[np.float64], low: float, high: float) -> NDArray[np.int64]:
    kept: NDArray[np.int64] = np.flatnonzero((ll >= low) & (ll <= high))
    return kept


def threshold(
    features: Features,
    loglik: NDArray[np.float64],
    *,
    metric: Metric,
    key: str,
    reference: Features,
    rng: np.random.Generator,
    fixed: tuple[float, float] | None = None,
) -> tuple[Cutoffs, Features]:
    """Tune (or fix) the cut-offs on one half; return them and the kept held-out samples."""
    n = len(features)
    if n < 4:
        raise ValueError(f"thresholding needs at least 4 samples; got {n}")
    if loglik.shape != (n,):
        raise ValueError(f"need one log-likelihood per sample: {loglik.shape} for {n} samples")
    direction = metric.directions[key]
    order = rng.permutation(n)
    tune, held = order[: n // 2], order[n // 2 :]
    ll_tune = loglik[tune]
    sub_rng = np.random.default_rng(rng.integers(0, 2**63 - 1))

    def score(lo: float, hi: float) -> tuple[float, int]:
        kept = _keep(ll_tune, *_bounds(ll_tune, lo, hi))
        if kept.size < 2:
            return math.nan, int(kept.size)
        values = metric.compute(features.take(tune[kept]), reference, sub_rng)
        return float(values[key]), int(kept.size)

    search: list[tuple[float, float, float]] = []
    if fixed is not None:
        lo, hi = fixed
        if not 0 <= lo < hi <= 1:
            raise ValueError(f"cut-offs must satisfy 0 <= lo < hi <= 1; got {lo}, {hi}")
        best_score, _ = score(lo, hi)
        search.append((lo, hi, best_score))
    else:
        best: tuple[float, float, float] | None = None
        min_keep = max(2, math.ceil(MIN_KEEP * tune.size))
        # Fewest samples dropped first, so ties keep the milder cut-offs.
        candidates = sorted(
            ((a, b) for a in GRID_LO for b in GRID_HI if b - a >= MIN_KEEP - 1e-9),
            key=lambda c: (c[0] + (1 - c[1]), c[0]),
        )
        for a, b in candidates:
            value, kept = score(a, b)
            if kept < min_keep or not math.isfinite(value):
                continue
            search.append((a, b, value))
            better = best is None or (value > best[2] if direction == "higher" else value < best[2])
            if better:
                best = (a, b, value)
        if best is None:
            raise ValueError("no cut-off pair keeps enough samples to score")
        lo, hi, best_score = best
    low, high = _bounds(ll_tune, lo, hi)
    kept_held = held[_keep(loglik[held], low, high)]
    if kept_held.size < 2:
        raise ValueError(
            f"the cut-offs ({lo}, {hi}) keep {kept_held.size} held-out samples; need 2 or more"
        )
    cutoffs = Cutoffs(
        lo,
        hi,
        low,
        high,
        fixed is None,
        key,
        direction,
        best_score,
        int(tune.size),
        int(held.size),
        int(kept_held.size),
        tuple(search),
    )
    return cutoffs, features.take(np.sort(kept_held))
