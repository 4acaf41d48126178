"""The automated metrics as pure functions of classifier outputs, plus an accumulator.

Every function takes NumPy arrays: ``probs`` are softmax probabilities ``(n, classes)``,
``activations`` the classifier's penultimate features ``(n, dim)``. Nothing here touches torch,
files or global random state: functions that draw anything take a ``numpy.random.Generator``.

Definitions (``p(y|x)`` the classifier's prediction, ``p(y)`` its mean over the samples):

- FID (lower is better): ``|mu_g - mu_r|^2 + tr(S_g + S_r - 2 (S_g S_r)^(1/2))`` between
  Gaussians fitted to generated and reference activations.
- IS (higher): ``exp(E_x KL(p(y|x) || p(y)))``; ``splits > 1`` averages it over equal parts.
- mIS (higher): ``exp(E_{x, x'} KL(p(y|x) || p(y|x')))`` over all ordered pairs (``x = x'``
  included, whose KL is 0).
- AM score (lower): ``KL(prior || p(y)) + E_x H(p(y|x))``, ``prior`` the training set's mean
  prediction.
- NDB (lower): k-means on reference activations; a bin is *statistically different* when a
  two-proportion z-test rejects equal shares of reference and generated samples at ``alpha``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from attrs import frozen
from numpy.typing import NDArray

Array = NDArray[np.float64]
_EPS = 1e-12


def _probs(probs: Any, name: str = "probs") -> Array:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"{name} must be (n >= 1, classes >= 2); got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    sums = p.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-4):
        raise ValueError(f"{name}: every row must sum to 1 (worst row sums to {sums.max():.6g})")
    out: Array = p / sums[:, None]
    return out


def _xlogy(p: Array, q: Array) -> Array:
    """``p * log(q)`` with ``0 * log(anything) = 0``."""
    out: Array = np.where(p > 0, p * np.log(np.maximum(q, _EPS)), 0.0)
    return out


def entropy_rows(probs: Array) -> Array:
    """The entropy (nats) of every row."""
    out: Array = -_xlogy(probs, probs).sum(axis=1)
    return out


def kl(p: Any, q: Any) -> float:
    """``KL(p || q)`` in nats for two distributions over the same classes."""
    pa, qa = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    return float((_xlogy(pa, pa) - _xlogy(pa, qa)).sum())


# -- FID ---------------------------------------------------------------------------------------
def gaussian_stats(activations: Any) -> tuple[Array, Array]:
    """Mean and (unbiased) covariance of ``activations (n >= 2, dim)``."""
    a = np.asarray(activations, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"activations must be (n >= 2, dim); got shape {a.shape}")
    return a.mean(axis=0), np.atleast_2d(np.cov(a, rowvar=False))


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, *, eps: float = 1e-6) -> float:
    """The Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``sqrtm(sigma1 @ sigma2)`` is computed by SciPy; when it is not finite (a singular product,
    e.g. fewer samples than dimensions) both covariances get ``eps`` added to their diagonal
    and it is computed again. A small imaginary part from rounding is dropped; a large one
    raises.
    """
    from scipy import linalg

    m1 = np.atleast_1d(np.asarray(mu1, np.float64))
    m2 = np.atleast_1d(np.asarray(mu2, np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if m1.shape != m2.shape or s1.shape != s2.shape or s1.shape != (m1.size, m1.size):
        raise ValueError(
            f"shapes do not match: mu {m1.shape} / {m2.shape}, sigma {s1.shape} / {s2.shape}"
        )
    diff = m1 - m2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.all(np.isfinite(covmean)):
            offset = np.eye(s1.shape[0]) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            worst = float(np.max(np.abs(covmean.imag)))
            raise ValueError(f"sqrtm of the covariance product has imaginary part {worst:.3g}")
        covmean = covmean.real
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def fid(generated: Any, reference: Any, *, eps: float = 1e-6) -> float:
    """FID between two sets of activations (lower is better; 0 for identical statistics)."""
    mu_g, s_g = gaussian_stats(generated)
    mu_r, s_r = gaussian_stats(reference)
    return frechet_distance(mu_g, s_g, mu_r, s_r, eps=eps)


# -- IS, mIS, AM -------------------------------------------------------------------------------
def _is_one(p: Array) -> float:
    marginal = p.mean(axis=0, keepdims=True)
    return math.exp(float((_xlogy(p, p) - _xlogy(p, marginal)).sum(axis=1).mean()))


def inception_score(probs: Any, *, splits: int = 1) -> tuple[float, float]:
    """IS ``exp(E_x KL(p(y|x) || p(y)))`` (higher is better; between 1 and the class count).

    With ``splits > 1`` the samples are cut, in order, into ``splits`` near-equal parts, the
    score is computed within each and their mean and standard deviation are returned (the
    Salimans et al. code used 10 parts; ``splits=2`` is the split-half variant of the SaShiMi
    reference). With ``splits=1`` the standard deviation is 0.
    """
    p = _probs(probs)
    if not 1 <= splits <= p.shape[0]:
        raise ValueError(f"splits must be between 1 and the sample count {p.shape[0]}: {splits}")
    scores = [_is_one(part) for part in np.array_split(p, splits)]
    return float(np.mean(scores)), float(np.std(scores))


def inception_score_reference(probs: Any, *, seed: int = 0) -> float:
    """IS as the SaShiMi reference computes it (not the textbook IS): the rows shuffled with
    ``RandomState(seed)``, the first half kept, and per class ``c`` the entropy ``H_c`` of
    column ``c`` of that half normalised to sum 1 (``scipy.stats.entropy`` along axis 0);
    the score is ``exp(mean_c [log(n // 2) - H_c])``. Its own numpy global state is not
    touched (the reference reseeds it)."""
    p = _probs(probs)
    order = np.random.RandomState(seed).permutation(p.shape[0])
    half = p[order][: p.shape[0] // 2]
    columns = half / np.maximum(half.sum(axis=0, keepdims=True), _EPS)
    entropy = -_xlogy(columns, columns).sum(axis=0)
    return math.exp(float(np.mean(math.log(p.shape[0] // 2) - entropy)))


def modified_inception_score_reference(probs: Any, *, pairs: int = 10000, seed: int = 0) -> float:
    """mIS as the SaShiMi reference samples it: ``pairs`` random ordered pairs
    ``RandomState(seed).randint(0, n, (pairs, 2))`` (self-pairs included), score
    ``exp(mean KL(p_i || p_j))``."""
    p = _probs(probs)
    index = np.random.RandomState(seed).randint(0, p.shape[0], (pairs, 2))
    a, b = p[index[:, 0]], p[index[:, 1]]
    kls = (_xlogy(a, a) - _xlogy(a, b)).sum(axis=1)
    return math.exp(float(kls.mean()))


def modified_inception_score(probs: Any) -> float:
    """mIS ``exp(E_{x,x'} KL(p(y|x) || p(y|x')))`` over all ordered pairs (higher is better).

    Computed in O(n * classes): the pair average of ``sum_y p(y|x) log p(y|x')`` factors into
    ``sum_y mean_x p(y|x) * mean_x' log p(y|x')``.
    """
    p = _probs(probs)
    neg_entropy = _xlogy(p, p).sum(axis=1).mean()
    cross = float(p.mean(axis=0) @ np.log(np.maximum(p, _EPS)).mean(axis=0))
    return math.exp(float(neg_entropy) - cross)


def am_score(probs: Any, prior: Any) -> float:
    """AM score ``KL(prior || p(y)) + E_x H(p(y|x))`` (lower is better, 0 at best).

    ``prior`` is the reference class distribution: the classifier's mean prediction over the
    training set in the SC09 protocol.
    """
    p = _probs(probs)
    q = np.asarray(prior, dtype=np.float64).reshape(-1)
    if q.shape[0] != p.shape[1] or np.any(q < 0) or not math.isclose(q.sum(), 1.0, abs_tol=1e-4):
        raise ValueError(f"prior must be a distribution over the {p.shape[1]} classes")
    return kl(q, p.mean(axis=0)) + float(entropy_rows(p).mean())


# -- NDB ---------------------------------------------------------------------------------------
@frozen
class NDBResult:
    """Number of statistically different bins and what it was computed from.

    Attributes:
        different: how many bins differ; ``k`` bins in all (``different / k`` is NDB/K).
        reference_share, generated_share: each bin's share of the two sets.
        flags: which bins differ. js: Jensen-Shannon divergence (nats) of the two shares.
    """

    different: int
    k: int
    reference_share: Array
    generated_share: Array
    flags: NDArray[np.bool_]
    js: float

    @property
    def ratio(self) -> float:
        return self.different / self.k


class NDBBins:
    """k-means bins fitted on reference activations (scikit-learn), reusable across sets."""

    def __init__(
        self,
        reference: Any,
        *,
        k: int,
        rng: np.random.Generator,
        max_iter: int = 300,
        seed: int | None = None,
    ) -> None:
        from sklearn.cluster import KMeans

        ref = np.asarray(reference, dtype=np.float64)
        if ref.ndim != 2 or ref.shape[0] < k:
            raise ValueError(f"NDB needs at least k={k} reference samples; got shape {ref.shape}")
        self.k = k
        seed = int(rng.integers(0, 2**31 - 1)) if seed is None else seed
        self.kmeans = KMeans(n_clusters=k, n_init=1, max_iter=max_iter, random_state=seed)
        self.reference_labels = self.kmeans.fit_predict(ref)
        self.reference_share = np.bincount(self.reference_labels, minlength=k) / ref.shape[0]
        self.n_reference = ref.shape[0]

    def assign(self, activations: Any) -> NDArray[np.int64]:
        labels: NDArray[np.int64] = self.kmeans.predict(np.asarray(activations, dtype=np.float64))
        return labels

    def compare(self, generated: Any, *, alpha: float = 0.05) -> NDBResult:
        labels = self.assign(generated)
        n_gen = labels.shape[0]
        share_g = np.bincount(labels, minlength=self.k) / n_gen
        flags = proportion_test(self.reference_share, self.n_reference, share_g, n_gen, alpha)
        return NDBResult(
            int(flags.sum()),
            self.k,
            self.reference_share,
            share_g,
            flags,
            js_divergence(self.reference_share, share_g),
        )


def proportion_test(
    share1: Array, n1: int, share2: Array, n2: int, alpha: float
) -> NDArray[np.bool_]:
    """Two-sided two-proportion z-tests, one per bin: True where equal shares are rejected."""
    from scipy.stats import norm

    pooled = (share1 * n1 + share2 * n2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (share1 - share2) / se, 0.0)
    p_values = 2 * norm.sf(np.abs(z))
    out: NDArray[np.bool_] = p_values < alpha
    return out


def js_divergence(p: Any, q: Any) -> float:
    """Jensen-Shannon divergence in nats (0 for equal distributions, at most log 2)."""
    pa, qa = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = (pa + qa) / 2
    return max(0.0, 0.5 * kl(pa, m) + 0.5 * kl(qa, m))


def ndb(
    generated: Any, reference: Any, *, k: int, rng: np.random.Generator, alpha: float = 0.05
) -> NDBResult:
    """NDB of ``generated`` against bins fitted on ``reference`` (lower is better)."""
    return NDBBins(reference, k=k, rng=rng).compare(generated, alpha=alpha)


# -- accumulation ------------------------------------------------------------------------------
class FeatureAccumulator:
    """Collects a set's classifier outputs batch by batch.

    ``update`` takes a batch of activations and probabilities (tensors or arrays); the
    running sums give the mean and covariance in float64 without keeping every batch apart,
    and the rows are kept for the metrics that need them (IS, NDB).
    """

    def __init__(self) -> None:
        self._acts: list[Array] = []
        self._probs: list[Array] = []
        self.n = 0
        self._sum: Array | None = None
        self._outer: Array | None = None

    def update(self, activations: Any, probs: Any) -> None:
        a = _as_numpy(activations)
        p = _as_numpy(probs)
        if a.ndim != 2 or p.ndim != 2 or a.shape[0] != p.shape[0]:
            raise ValueError(f"batch shapes do not match: {a.shape} and {p.shape}")
        if self._sum is None:
            self._sum = np.zeros(a.shape[1])
            self._outer = np.zeros((a.shape[1], a.shape[1]))
        assert self._outer is not None
        self._sum += a.sum(axis=0)
        self._outer += a.T @ a
        self.n += a.shape[0]
        self._acts.append(a)
        self._probs.append(p)

    def extend(self, batches: Iterable[tuple[Any, Any]]) -> FeatureAccumulator:
        for activations, probs in batches:
            self.update(activations, probs)
        return self

    @property
    def activations(self) -> Array:
        return np.concatenate(self._acts) if self._acts else np.zeros((0, 0))

    @property
    def probs(self) -> Array:
        return np.concatenate(self._probs) if self._probs else np.zeros((0, 0))

    def gaussian(self) -> tuple[Array, Array]:
        """Mean and unbiased covariance from the running sums."""
        if self._sum is None or self._outer is None or self.n < 2:
            raise ValueError("need at least 2 samples for a covariance")
        mean = self._sum / self.n
        cov = (self._outer - self.n * np.outer(mean, mean)) / (self.n - 1)
        return mean, cov


def _as_numpy(x: Any) -> Array:
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)
