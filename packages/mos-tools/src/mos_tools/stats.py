"""Statistics for listening tests, standard library only: t-intervals, bootstrap intervals,
Cohen's kappa and Krippendorff's alpha."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Hashable, Mapping, Sequence


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student's t distribution function."""
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Inverse of :func:`t_cdf` by bisection (``0 < p < 1``)."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The ``level`` confidence interval of the mean of ``values`` (Student's t)."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return (mean, mean) if n else (math.nan, math.nan)
    half = t_quantile(0.5 + level / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return mean - half, mean + half


def normal_interval(values: Sequence[float], z: float = 1.96) -> tuple[float, float]:
    """``mean -/+ z * s / sqrt(n)`` with the sample standard deviation ``s``: the interval the
    reference's MOS notebook reports (a normal approximation; close to :func:`t_interval` for
    the hundreds of ratings a study collects)."""
    n = len(values)
    if n < 2:
        mean = statistics.fmean(values) if n else math.nan
        return mean, mean
    mean = statistics.fmean(values)
    half = z * statistics.stdev(values) / math.sqrt(n)
    return mean - half, mean + half


def bootstrap_interval(
    values: Sequence[float], *, rng: random.Random, level: float = 0.95, resamples: int = 2000
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; ``rng`` is passed in, never global."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    means = sorted(statistics.fmean(rng.choices(values, k=n)) for _ in range(resamples))
    lo = means[math.floor((1 - level) / 2 * (resamples - 1))]
    hi = means[math.ceil((1 + level) / 2 * (resamples - 1))]
    return lo, hi


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa between two labelings of the same items."""
    if len(a) != len(b) or not a:
        raise ValueError(f"need two equally long, non-empty labelings; got {len(a)} and {len(b)}")
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    labels = set(a) | set(b)
    expected = sum((list(a).count(k) / n) * (list(b).count(k) / n) for k in labels)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def krippendorff_alpha_interval(ratings: Mapping[Hashable, Sequence[float]]) -> float:
    """Krippendorff's alpha with the interval metric; ``ratings`` maps each item to the values
    its raters gave (items with fewer than two ratings do not count)."""
    units = [list(v) for v in ratings.values() if len(v) >= 2]
    values = [x for unit in units for x in unit]
    n = len(values)
    if n < 2:
        return math.nan
    observed = (
        sum(
            sum((x - y) ** 2 for i, x in enumerate(unit) for j, y in enumerate(unit) if i != j)
            / (len(unit) - 1)
            for unit in units
        )
        / n
    )
    expected = sum(
        (x - y) ** 2 for i, x in enumerate(values) for j, y in enumerate(values) if i != j
    )
    expected /= n * (n - 1)
    return 1.0 if expected == 0 else 1 - observed / expected
