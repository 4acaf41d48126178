"""Statistics against closed forms and textbook values."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mos_tools.stats import (
    bootstrap_interval,
    cohen_kappa,
    krippendorff_alpha_interval,
    t_cdf,
    t_interval,
    t_quantile,
)


@pytest.mark.parametrize(
    ("df", "q975"),
    [(1, 12.7062), (2, 4.3027), (5, 2.5706), (10, 2.2281), (30, 2.0423), (1000, 1.9623)],
)
def test_t_quantiles_match_the_tables(df: int, q975: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(q975, abs=1e-4)


@settings(max_examples=30, deadline=None)
@given(t=st.floats(-20, 20), df=st.integers(1, 200))
def test_t_cdf_is_symmetric_and_inverted_by_the_quantile(t: float, df: int) -> None:
    assert t_cdf(t, df) + t_cdf(-t, df) == pytest.approx(1.0, abs=1e-12)
    p = t_cdf(t, df)
    if 1e-6 < p < 1 - 1e-6:
        assert t_quantile(p, df) == pytest.approx(t, abs=1e-6)


def test_t_interval_matches_its_formula() -> None:
    values = [3.0, 4.0, 5.0, 4.0, 3.5]
    lo, hi = t_interval(values)
    half = 2.7764451 * statistics.stdev(values) / math.sqrt(5)
    assert (lo, hi) == pytest.approx((3.9 - half, 3.9 + half), abs=1e-6)


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0] * 4
    a = bootstrap_interval(values, rng=random.Random(3))
    assert a == bootstrap_interval(values, rng=random.Random(3))
    assert a[0] < 3.0 < a[1]
    assert a[1] - a[0] < 2 * (t_interval(values)[1] - t_interval(values)[0])


def test_kappa_and_alpha_at_the_extremes() -> None:
    assert cohen_kappa([0, 1, 2, 3], [0, 1, 2, 3]) == 1.0
    assert cohen_kappa([0, 0, 1, 1], [0, 1, 0, 1]) == 0.0
    assert krippendorff_alpha_interval({"a": [1, 1], "b": [5, 5], "c": [3, 3]}) == 1.0
    assert krippendorff_alpha_interval({"a": [1, 5], "b": [5, 1]}) < 0
    with pytest.raises(ValueError, match="equally long"):
        cohen_kappa([1], [1, 2])
