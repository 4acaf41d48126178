"""The metrics against closed forms, hand-computed cases and brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from audio_metrics import metrics as m


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_fid_of_a_set_against_itself_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(500, 16))
    assert m.fid(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_diagonal_gaussians_matches_the_closed_form() -> None:
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    got = m.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(expected, rel=1e-10)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 8))
def test_fid_of_general_gaussians_matches_the_symmetric_form(seed: int, d: int) -> None:
    # tr sqrt(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2), computed here with eigh only.
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _spd(rng, d), _spd(rng, d)
    r1 = _sqrt_psd(s1)
    expected = (
        np.sum((mu1 - mu2) ** 2)
        + np.trace(s1)
        + np.trace(s2)
        - 2 * np.trace(_sqrt_psd(r1 @ s2 @ r1))
    )
    assert m.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6, abs=1e-8)


def test_fid_of_samples_from_known_gaussians_approaches_the_formula() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    a = rng.normal(size=(n, 2)) * [1.0, 2.0]
    b = rng.normal(size=(n, 2)) * [1.0, 1.0] + [3.0, 0.0]
    expected = 9.0 + (1 + 1 - 2) + (4 + 1 - 2 * 2)
    assert m.fid(a, b) == pytest.approx(expected, abs=0.05)


def test_fid_survives_singular_covariances() -> None:
    # Fewer samples than dimensions: sqrtm of the product is singular; the guard handles it.
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 20)), rng.normal(size=(5, 20)) + 1
    value = m.fid(a, b)
    assert math.isfinite(value)
    assert value > 0


def test_accumulator_statistics_equal_numpy() -> None:
    rng = np.random.default_rng(3)
    acts, probs = rng.normal(size=(103, 7)), rng.dirichlet(np.ones(4), size=103)
    acc = m.FeatureAccumulator()
    for start in range(0, 103, 10):
        acc.update(acts[start : start + 10], probs[start : start + 10])
    mean, cov = acc.gaussian()
    np.testing.assert_allclose(mean, acts.mean(0), atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(acts, rowvar=False), atol=1e-10)
    np.testing.assert_array_equal(acc.probs, probs)
    assert acc.n == 103


def test_is_of_uniformly_spread_one_hot_predictions_is_the_class_count() -> None:
    probs = np.eye(10)[np.arange(200) % 10]
    assert m.inception_score(probs)[0] == pytest.approx(10.0, rel=1e-12)


def test_is_of_identical_predictions_is_one() -> None:
    probs = np.tile([0.7, 0.2, 0.1], (50, 1))
    assert m.inception_score(probs)[0] == pytest.approx(1.0, abs=1e-12)


def test_is_split_half_is_the_mean_of_the_halves() -> None:
    probs = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=float)
    # First half: uniform one-hot -> 2; second half: identical -> 1.
    mean, std = m.inception_score(probs, splits=2)
    assert (mean, std) == (pytest.approx(1.5), pytest.approx(0.5))


@settings(max_examples=50, deadline=None)
@given(
    probs=arrays(
        np.float64, st.tuples(st.integers(1, 30), st.integers(2, 6)), elements=st.floats(0.01, 1)
    )
)
def test_is_lies_between_one_and_the_class_count(probs: np.ndarray) -> None:
    probs = probs / probs.sum(1, keepdims=True)
    value = m.inception_score(probs)[0]
    assert 1 - 1e-9 <= value <= probs.shape[1] + 1e-9


def test_mis_of_two_predictions_by_hand() -> None:
    p1, p2 = np.array([0.8, 0.2]), np.array([0.3, 0.7])
    kl12 = 0.8 * math.log(0.8 / 0.3) + 0.2 * math.log(0.2 / 0.7)
    kl21 = 0.3 * math.log(0.3 / 0.8) + 0.7 * math.log(0.7 / 0.2)
    # Four ordered pairs, two of them (i, i) with KL 0.
    assert m.modified_inception_score(np.stack([p1, p2])) == pytest.approx(
        math.exp((kl12 + kl21) / 4), rel=1e-12
    )


@settings(max_examples=40, deadline=None)
@given(
    probs=arrays(
        np.float64, st.tuples(st.integers(1, 12), st.integers(2, 5)), elements=st.floats(0.01, 1)
    )
)
def test_mis_equals_the_pairwise_definition(probs: np.ndarray) -> None:
    probs = probs / probs.sum(1, keepdims=True)
    pairs = [m.kl(a, b) for a in probs for b in probs]
    assert m.modified_inception_score(probs) == pytest.approx(math.exp(np.mean(pairs)), rel=1e-9)


def test_am_score_by_hand() -> None:
    probs = np.array([[0.9, 0.1], [0.7, 0.3]])
    prior = np.array([0.5, 0.5])

    def h(p: float) -> float:
        return -(p * math.log(p) + (1 - p) * math.log(1 - p))

    kl = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)
    assert m.am_score(probs, prior) == pytest.approx(kl + (h(0.9) + h(0.7)) / 2, rel=1e-12)


def test_am_score_is_zero_for_confident_predictions_matching_the_prior() -> None:
    probs = np.eye(4)[np.arange(40) % 4]
    assert m.am_score(probs, np.full(4, 0.25)) == pytest.approx(0.0, abs=1e-12)


def _clusters(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    return np.concatenate([c + 0.1 * rng.normal(size=(n, centres.shape[1])) for c in centres])


CENTRES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])


def test_ndb_of_a_set_against_itself_finds_no_different_bin() -> None:
    rng = np.random.default_rng(4)
    ref = _clusters(rng, 300, CENTRES)
    result = m.ndb(ref, ref, k=4, rng=np.random.default_rng(0))
    assert result.different == 0
    assert result.ratio == 0.0
    assert result.js == pytest.approx(0.0, abs=1e-12)


def test_ndb_flags_exactly_the_bins_a_shift_moves_mass_between() -> None:
    rng = np.random.default_rng(5)
    ref = _clusters(rng, 300, CENTRES)
    # Generated: clusters 0 and 1 as before; cluster 2's samples moved onto cluster 3.
    gen = _clusters(rng, 300, CENTRES[[0, 1, 3, 3]])
    bins = m.NDBBins(ref, k=4, rng=np.random.default_rng(0))
    result = bins.compare(gen)
    moved_from = int(bins.assign(CENTRES[[2]])[0])
    moved_to = int(bins.assign(CENTRES[[3]])[0])
    assert set(np.flatnonzero(result.flags).tolist()) == {moved_from, moved_to}
    assert result.different == 2
    assert result.ratio == 0.5


def test_ndb_random_state_is_passed_in() -> None:
    rng = np.random.default_rng(6)
    ref, gen = rng.normal(size=(400, 3)), rng.normal(size=(200, 3)) + 0.3
    a = m.ndb(gen, ref, k=8, rng=np.random.default_rng(42))
    np.random.seed(123)  # the global state must not matter
    b = m.ndb(gen, ref, k=8, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(a.flags, b.flags)
    np.testing.assert_array_equal(a.generated_share, b.generated_share)


def test_js_divergence_bounds() -> None:
    assert m.js_divergence([1, 0], [0, 1]) == pytest.approx(math.log(2))
    assert m.js_divergence([0.5, 0.5], [0.5, 0.5]) == 0.0


@pytest.mark.parametrize(
    ("probs", "message"),
    [
        (np.ones((3,)), "must be \\(n >= 1, classes >= 2\\)"),
        (np.array([[0.5, 0.6]]), "every row must sum to 1"),
        (np.array([[1.5, -0.5]]), "non-negative"),
    ],
)
def test_bad_probabilities_are_refused_with_a_reason(probs: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        m.inception_score(probs)


def test_fid_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shapes do not match"):
        m.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
