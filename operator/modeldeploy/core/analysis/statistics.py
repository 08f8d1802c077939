"""The statistics behind the comparative checks, and the guarantees they give.

Sits in ``core.analysis`` below the checks: pure functions of counts, with
scipy for the distributions. ``checks`` decides what to compare; this module
says how sure we are.

Method
------
Each comparative check (error-rate, latency, prediction-drift) asks two
questions of the cumulative counts of the canary and the stable revision:

1. *Is the canary worse than the tolerance?* An effect size against the
   check's limit: the rise of the 5xx share over ``maxIncrease``, the quantile
   ratio over ``maxRatio`` (or the ``maxSeconds`` ceiling), PSI over
   ``maxPsi``. Within the tolerance, the check passes (given enough samples).
2. *If so, is the difference real?* A test of "the canary is no worse than
   stable". Significant at the level this look may spend: ``Failure``.
   Significant only as a single fixed-sample test would see it (p <= 0.05,
   ``checks.SUSPICION_LEVEL``): ``Inconclusive``, which holds the step while
   data accumulates. Weaker than that, the excess is sampling noise (one
   error among twenty requests) and the check passes.

Only ``Failure`` needs spent significance, so noise can hold a rollout for a
while but cannot roll it back except at the stated rate; and a canary that is
worse by a nominally significant margin is not promoted until the evidence
either convicts or clears it.

Repeated looks
--------------
A rollout looks at growing cumulative data again and again, and testing each
look at a fixed level would multiply false rollbacks. Look ``k`` (1-based)
spends ``alpha_k = alpha / (k * (k + 1))``; these sum to ``alpha`` over any
number of looks (``1/(k(k+1)) = 1/k - 1/(k+1)`` telescopes). By the union
bound, the probability that *any* look rejects a true null hypothesis is at
most ``alpha``, however many looks there are, however they are spaced, and
however the traffic weights change between them. The only state is the look
count. The bound ignores the correlation between looks, so it is conservative;
the price is that look ``k`` needs a p-value below ``alpha/(k(k+1))``. A real
failure's p-value falls exponentially with its samples, so the price is a few
more samples, not a missed failure: a canary that fails all of ten requests
while stable fails none of ninety has p ~ 6e-14 and is caught at the first
look with enough samples.

Tests
-----
- *error-rate*: one-sided Fisher exact test on the 2x2 table (5xx or not,
  canary or stable). Exact at any sample size under "every request of either
  revision fails with the same probability, independently", and conservative
  when the canary is better.
- *latency*: histograms give exact counts above every bucket bound. The shares
  of canary and stable requests slower than the bound at the pooled median and
  slower than the bound at the pooled q-quantile are compared by Fisher's test
  (each at half the look's alpha). Bounds picked from the pooled histogram keep
  the test exact when both revisions have the same latency distribution: the
  pooled data does not depend on which request went where. The median bound
  catches a canary slower on every request within a few dozen requests; the
  quantile bound catches a slower tail. The absolute ceiling uses an exact
  binomial test of the canary's share above the ceiling against ``1 - q``.
- *prediction-drift*: chi-square test of homogeneity on the 2xK table of class
  counts or score buckets, after merging the sparsest categories (chosen from
  pooled counts) until every expected count is at least 5, where the
  chi-square approximation holds. With ``psi`` the effect size is PSI minus
  its expectation under no drift, ``(K-1) * (1/n_canary + 1/n_stable)``, so a
  small sample does not read as drift; significance comes from the same test.

Guarantee
---------
If the canary behaves exactly like stable, each comparative check fails during
a whole rollout with probability at most ``alpha`` (``DEFAULT_ALPHA`` = 0.003
in ``checks``), so an analysis of ``m`` such checks rolls back an identical
model with probability at most ``m * alpha`` (0.9% for the three built-ins).
The effect gates make the real rate lower still (``make bench-analysis``
measures it). This rests on requests being independent and each revision's
rates being steady over the window: an incident on stable alone during the
window is a difference the tests will see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

MIN_EXPECTED = 5.0


def spent_alpha(alpha: float, look: int) -> float:
    """The significance look ``look`` (1-based) may spend; all looks together spend ``alpha``."""
    k = max(1, look)
    return alpha / (k * (k + 1))


def fisher_greater(
    canary_hits: int, canary_total: int, stable_hits: int, stable_total: int
) -> float:
    """p-value of the canary's hit share exceeding stable's: one-sided Fisher exact test."""
    population = canary_total + stable_total
    hits = canary_hits + stable_hits
    if hits == 0 or canary_total == 0 or stable_total == 0:
        return 1.0
    # P(X >= canary_hits) for X ~ Hypergeometric(population, hits, canary_total)
    return float(stats.hypergeom.sf(canary_hits - 1, population, hits, canary_total))


def binomial_greater(hits: int, total: int, rate: float) -> float:
    """p-value of a share above ``rate``: one-sided exact binomial test."""
    if total == 0:
        return 1.0
    return float(stats.binom.sf(hits - 1, total, rate))


@dataclass(frozen=True)
class ChiSquare:
    statistic: float
    dof: int
    p_value: float


def _merge_sparse(columns: list[tuple[float, float]], need: float) -> list[tuple[float, float]]:
    """Merge the two smallest categories until each has ``need`` pooled observations."""
    merged = sorted(columns, key=sum)
    while len(merged) > 1 and sum(merged[0]) < need:
        (c1, s1), (c2, s2) = merged[0], merged[1]
        merged = sorted([(c1 + c2, s1 + s2), *merged[2:]], key=sum)
    return merged


def chi_square_homogeneity(canary: Sequence[float], stable: Sequence[float]) -> ChiSquare:
    """Chi-square test that two count vectors over the same categories share one distribution."""
    columns = [(c, s) for c, s in zip(canary, stable, strict=True) if c + s > 0]
    n_canary = sum(c for c, _ in columns)
    n_stable = sum(s for _, s in columns)
    if n_canary <= 0 or n_stable <= 0:
        return ChiSquare(0.0, 0, 1.0)
    grand = n_canary + n_stable
    # A category's smallest expected count is min(n) * pooled / grand.
    columns = _merge_sparse(columns, MIN_EXPECTED * grand / min(n_canary, n_stable))
    if len(columns) < 2:
        return ChiSquare(0.0, 0, 1.0)
    statistic = 0.0
    for c, s in columns:
        pooled = c + s
        for observed, row in ((c, n_canary), (s, n_stable)):
            expected = row * pooled / grand
            statistic += (observed - expected) ** 2 / expected
    dof = len(columns) - 1
    return ChiSquare(statistic, dof, float(stats.chi2.sf(statistic, dof)))


def shares(counts: Sequence[float]) -> tuple[float, ...]:
    """Shares with half a count added to each category, so none is zero (Jeffreys)."""
    total = sum(counts) + 0.5 * len(counts)
    return tuple((c + 0.5) / total for c in counts)


def psi(canary: Sequence[float], stable: Sequence[float]) -> float:
    """Population stability index of the canary's distribution against stable's."""
    return sum(
        (c - s) * math.log(c / s) for c, s in zip(shares(canary), shares(stable), strict=True)
    )


def psi_noise(categories: int, n_canary: float, n_stable: float) -> float:
    """PSI's expected value when both samples come from one distribution."""
    if n_canary <= 0 or n_stable <= 0:
        return math.inf
    return max(0, categories - 1) * (1 / n_canary + 1 / n_stable)
