"""The statistics and histogram helpers behind the checks, one rule per test."""

from __future__ import annotations

import itertools
import math
from math import comb

import pytest
from scipy import stats

from modeldeploy.core.analysis import histograms as hist
from modeldeploy.core.analysis.statistics import (
    binomial_greater,
    chi_square_homogeneity,
    fisher_greater,
    psi,
    psi_noise,
    spent_alpha,
)

INF = math.inf


def test_spent_alpha_sums_to_alpha_over_any_number_of_looks() -> None:
    spent = [spent_alpha(0.01, k) for k in range(1, 10_001)]
    assert sum(spent) == pytest.approx(0.01 * (1 - 1 / 10_001))
    assert all(a > b for a, b in itertools.pairwise(spent))


def test_spent_alpha_treats_look_zero_as_the_first() -> None:
    assert spent_alpha(0.01, 0) == spent_alpha(0.01, 1) == 0.005


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        # every canary request failed, none of stable's: 1 / C(100, 10)
        pytest.param((10, 10, 0, 90), 1 / comb(100, 10), id="all-canary"),
        pytest.param((0, 100, 5, 900), 1.0, id="no-canary-errors"),
        pytest.param((0, 100, 0, 900), 1.0, id="no-errors"),
        pytest.param((3, 0, 0, 900), 1.0, id="no-canary-requests"),
    ],
)
def test_fisher_greater_known_values(table: tuple[int, int, int, int], expected: float) -> None:
    assert fisher_greater(*table) == pytest.approx(expected)


def test_fisher_greater_matches_scipys_fisher_exact() -> None:
    _, p = stats.fisher_exact([[7, 193], [9, 1791]], alternative="greater")
    assert fisher_greater(7, 200, 9, 1800) == pytest.approx(p)


def test_binomial_greater() -> None:
    assert binomial_greater(0, 100, 0.01) == 1.0
    assert binomial_greater(2, 2, 0.5) == pytest.approx(0.25)
    assert binomial_greater(0, 0, 0.5) == 1.0


def test_chi_square_matches_scipy_when_no_category_is_sparse() -> None:
    canary, stable = [300, 320, 380], [3100, 3000, 2900]
    expected = stats.chi2_contingency([canary, stable], correction=False)
    got = chi_square_homogeneity(canary, stable)
    assert got.statistic == pytest.approx(expected.statistic)
    assert got.dof == 2
    assert got.p_value == pytest.approx(expected.pvalue)


def test_chi_square_merges_sparse_categories() -> None:
    # The two rare classes are merged: two categories, one degree of freedom.
    got = chi_square_homogeneity([50, 48, 1, 1], [500, 480, 10, 10])
    assert got.dof == 1


def test_chi_square_without_two_categories_is_no_evidence() -> None:
    assert chi_square_homogeneity([10, 0], [90, 0]).p_value == 1.0
    assert chi_square_homogeneity([0, 0], [90, 10]).p_value == 1.0


def test_psi_of_identical_shares_is_zero_and_grows_with_shift() -> None:
    assert psi([60, 30, 10], [600, 300, 100]) == pytest.approx(0, abs=1e-3)
    assert psi([420, 300, 280], [6000, 3000, 1000]) == pytest.approx(0.25, abs=0.01)


def test_psi_noise_shrinks_with_samples() -> None:
    assert psi_noise(3, 20, 180) > psi_noise(3, 200, 1800)
    assert psi_noise(3, 0, 10) == INF


# --- histograms -------------------------------------------------------------------

B = ((0.1, 10.0), (0.5, 60.0), (1.0, 90.0), (INF, 100.0))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        pytest.param(0.05, 0.05, id="first-bucket-from-zero"),
        pytest.param(0.5, 0.42, id="interpolated"),
        pytest.param(0.9, 1.0, id="bucket-edge"),
        pytest.param(0.99, 1.0, id="inf-bucket-gives-largest-finite-bound"),
    ],
)
def test_quantile_interpolates_like_histogram_quantile(q: float, expected: float) -> None:
    assert hist.quantile(q, B) == pytest.approx(expected)


def test_quantile_of_an_empty_histogram_is_nan() -> None:
    assert math.isnan(hist.quantile(0.5, ((0.1, 0.0), (INF, 0.0))))


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        pytest.param(((INF, 5.0), (0.1, 2.0)), ((0.1, 2.0), (INF, 5.0)), id="sorted"),
        pytest.param(
            ((0.1, 3.0), (0.5, 2.0), (INF, 4.0)),
            ((0.1, 3.0), (0.5, 3.0), (INF, 4.0)),
            id="made-monotone",
        ),
        pytest.param((), None, id="empty"),
        pytest.param(((0.1, 3.0),), None, id="no-inf"),
        pytest.param(((0.1, -1.0), (INF, 3.0)), None, id="negative"),
        pytest.param(((0.1, 1.0), (0.1, 2.0), (INF, 3.0)), None, id="duplicate-bound"),
    ],
)
def test_normalize(
    buckets: tuple[tuple[float, float], ...], expected: tuple[tuple[float, float], ...] | None
) -> None:
    assert hist.normalize(buckets) == expected


def test_counts_above_bound_and_per_bucket() -> None:
    assert hist.count_above(0.5, B) == 40
    assert hist.counts_per_bucket(B) == (10, 50, 30, 10)
    assert hist.bound_at_or_above(0.3, B) == 0.5
    assert hist.bound_at_or_above(2.0, B) is None


def test_common_bounds_and_pooled() -> None:
    extra = ((0.1, 1.0), (0.25, 2.0), (0.5, 3.0), (1.0, 4.0), (INF, 5.0))
    first, second = hist.common_bounds(extra, B)
    assert [le for le, _ in first] == [le for le, _ in second] == [0.1, 0.5, 1.0, INF]
    assert hist.pooled(first, second)[-1] == (INF, 105.0)
