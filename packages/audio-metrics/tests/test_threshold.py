"""Likelihood thresholding: the fixed reference cut-offs and a search that really searches."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audio_metrics.config import ISConfig
from audio_metrics.suite import IS, Features
from audio_metrics.threshold import Cutoffs, threshold


def _features(probs: np.ndarray) -> Features:
    n = probs.shape[0]
    return Features(np.zeros((n, 2)), probs, tuple(f"{i}.wav" for i in range(n)))


def _planted(n: int = 200) -> tuple[Features, np.ndarray]:
    """The least likely 30% predict class 0 with certainty (collapsed junk), the rest spread
    evenly over 10 classes: dropping the bottom 30% maximises IS."""
    rng = np.random.default_rng(0)
    loglik = np.sort(rng.normal(size=n))
    labels = np.where(np.arange(n) < 0.3 * n, 0, rng.integers(0, 10, size=n))
    probs = np.full((n, 10), 0.001)
    probs[np.arange(n), labels] = 1 - 0.009
    perm = rng.permutation(n)
    return _features(probs[perm]), loglik[perm]


def _threshold(
    feats: Features, loglik: np.ndarray, seed: int = 0, fixed: tuple[float, float] | None = None
) -> tuple[Cutoffs, Features]:
    return threshold(
        feats,
        loglik,
        metric=IS(ISConfig()),
        key="is",
        reference=feats,
        rng=np.random.default_rng(seed),
        fixed=fixed,
    )


def test_the_search_finds_the_planted_cut_off_and_beats_the_starting_point() -> None:
    feats, loglik = _planted()
    cut, kept = _threshold(feats, loglik)
    assert cut.tuned
    assert 0.25 <= cut.lo <= 0.4
    start = next(s for lo, hi, s in cut.search if (lo, hi) == (0.0, 1.0))
    assert cut.score > start + 1.0
    assert cut.n_tune + cut.n_eval == 200
    assert len(kept) == cut.n_kept
    # The held-out half is judged with the tuning half's log-likelihood values.
    kept_ll = loglik[[int(name.split(".")[0]) for name in kept.names]]
    assert kept_ll.min() >= cut.ll_lo
    assert kept_ll.max() <= cut.ll_hi


def test_fixed_cut_offs_reproduce_the_reference_and_skip_the_search() -> None:
    feats, loglik = _planted()
    cut, kept = _threshold(feats, loglik, fixed=(0.4, 0.95))
    assert not cut.tuned
    assert (cut.lo, cut.hi) == (0.4, 0.95)
    assert len(cut.search) == 1
    order = np.random.default_rng(0).permutation(200)
    tune, held = order[:100], order[100:]
    lo, hi = np.quantile(loglik[tune], [0.4, 0.95])
    expected = sorted(int(i) for i in held if lo <= loglik[i] <= hi)
    assert [int(n.split(".")[0]) for n in kept.names] == expected


def test_zero_and_one_keep_everything() -> None:
    feats, loglik = _planted(40)
    cut, kept = _threshold(feats, loglik, seed=1, fixed=(0.0, 1.0))
    assert (cut.ll_lo, cut.ll_hi) == (-math.inf, math.inf)
    assert len(kept) == 20


@pytest.mark.parametrize("fixed", [(0.5, 0.5), (-0.1, 0.9), (0.2, 1.2)])
def test_bad_fixed_cut_offs_are_refused(fixed: tuple[float, float]) -> None:
    feats, loglik = _planted(40)
    with pytest.raises(ValueError, match="0 <= lo < hi <= 1"):
        _threshold(feats, loglik, fixed=fixed)


def test_too_few_samples_are_refused() -> None:
    feats, loglik = _planted(40)
    with pytest.raises(ValueError, match="at least 4 samples"):
        _threshold(feats.take(np.arange(3)), loglik[:3])
