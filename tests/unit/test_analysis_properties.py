"""Properties of the analysis that hold for all inputs (hypothesis).

- More canary errors (or slower canary requests) never improve a verdict;
  more stable errors never worsen it.
- A canary identical to stable fails error-rate, latency and drift at most at
  the stated rate: per look, and over a whole rollout of growing cumulative
  data. These run with a large alpha so that a few thousand simulated
  rollouts can tell the rate apart from the bound; a seeded generator keeps
  them deterministic.
- ``assess`` fails only at the failure limit and passes only when every check passed.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from modeldeploy.core.analysis import (
    ClassCounts,
    ErrorCounts,
    LatencyHistograms,
    Measurement,
    assess,
    evaluate,
)
from modeldeploy.core.analysis.statistics import spent_alpha
from modeldeploy.core.api import CheckName, CheckResult, CheckSpec, Verdict

RANK = {Verdict.FAILURE: 0, Verdict.INCONCLUSIVE: 1, Verdict.SUCCESS: 2}
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, math.inf)
ERROR_RATE = CheckSpec(name=CheckName.ERROR_RATE)
STRICT_ERROR_RATE = CheckSpec(name=CheckName.ERROR_RATE, max_increase=0)
LATENCY = CheckSpec(name=CheckName.LATENCY)
DRIFT = CheckSpec(name=CheckName.PREDICTION_DRIFT)
SIMULATION = settings(max_examples=8, deadline=None, derandomize=True)


def rank(check: CheckSpec, m: Measurement, look: int, min_samples: int = 10) -> int:
    return RANK[evaluate(check, m, min_samples=min_samples, look=look).verdict]


# --- monotone in the evidence -------------------------------------------------------


@st.composite
def error_counts(draw: st.DrawFn) -> tuple[int, int, int, int]:
    c_total = draw(st.integers(1, 5000))
    s_total = draw(st.integers(1, 50_000))
    return (
        c_total,
        draw(st.integers(0, c_total - 1)),
        s_total,
        draw(st.integers(0, s_total - 1)),
    )


@given(error_counts(), st.integers(1, 60), st.integers(1, 200))
def test_more_canary_errors_never_improve_the_error_rate_verdict(
    counts: tuple[int, int, int, int], look: int, min_samples: int
) -> None:
    c_total, c_err, s_total, s_err = counts
    fewer = ErrorCounts(c_total, c_err, s_total, s_err)
    more = ErrorCounts(c_total, c_err + 1, s_total, s_err)
    assert rank(ERROR_RATE, more, look, min_samples) <= rank(ERROR_RATE, fewer, look, min_samples)


@given(error_counts(), st.integers(1, 60))
def test_more_stable_errors_never_worsen_the_canary_verdict(
    counts: tuple[int, int, int, int], look: int
) -> None:
    c_total, c_err, s_total, s_err = counts
    before = ErrorCounts(c_total, c_err, s_total, s_err)
    after = ErrorCounts(c_total, c_err, s_total, s_err + 1)
    assert rank(ERROR_RATE, after, look) >= rank(ERROR_RATE, before, look)


def cumulative(per_bucket: list[int]) -> tuple[tuple[float, float], ...]:
    return tuple(zip(BOUNDS, np.cumsum(per_bucket).astype(float).tolist(), strict=True))


@given(
    st.lists(st.integers(0, 300), min_size=len(BOUNDS), max_size=len(BOUNDS)),
    st.lists(st.integers(0, 3000), min_size=len(BOUNDS), max_size=len(BOUNDS)),
    st.integers(0, len(BOUNDS) - 2),
    st.integers(1, 60),
)
def test_a_slower_canary_request_never_improves_the_latency_verdict(
    canary: list[int], stable: list[int], bucket: int, look: int
) -> None:
    if canary[bucket] == 0:
        canary[bucket] = 1
    slower = canary.copy()
    slower[bucket] -= 1
    slower[bucket + 1] += 1
    before = LatencyHistograms(cumulative(canary), cumulative(stable))
    after = LatencyHistograms(cumulative(slower), cumulative(stable))
    assert rank(LATENCY, after, look) <= rank(LATENCY, before, look)


# --- identical canaries fail at most at the stated rate -------------------------------

ALPHA = 0.2  # large, so that a few thousand draws resolve the rate
DRAWS = 2000


def margin(rate: float, n: int) -> float:
    """Three standard errors of a rate estimated from n draws."""
    return 3 * math.sqrt(rate * (1 - rate) / n)


def fails(check: CheckSpec, m: Measurement, look: int) -> bool:
    result = evaluate(check, m, min_samples=20, look=look, alpha=ALPHA)
    return result.verdict is Verdict.FAILURE


probabilities = st.lists(st.floats(0.02, 1.0), min_size=2, max_size=6).map(
    lambda w: np.array(w) / sum(w)
)


@SIMULATION
@given(probabilities, st.integers(20, 400), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_identical_predictions_fail_drift_at_most_at_the_stated_rate_per_look(
    p: np.ndarray, n_canary: int, stable_factor: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    labels = [str(i) for i in range(len(p))]
    failures = 0
    for _ in range(DRAWS):
        canary = rng.multinomial(n_canary, p)
        stable = rng.multinomial(n_canary * stable_factor, p)
        counts = ClassCounts.of(
            dict(zip(labels, canary.tolist(), strict=True)),
            dict(zip(labels, stable.tolist(), strict=True)),
        )
        failures += fails(DRIFT, counts, look=1)
    rate = spent_alpha(ALPHA, 1)
    assert failures / DRAWS <= rate + margin(rate, DRAWS)


@SIMULATION
@given(st.floats(0.0, 0.3), st.integers(20, 400), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_identical_error_rates_fail_at_most_at_the_stated_rate_per_look(
    p: float, n_canary: int, stable_factor: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n_stable = n_canary * stable_factor
    failures = sum(
        fails(
            STRICT_ERROR_RATE,
            ErrorCounts(n_canary, rng.binomial(n_canary, p), n_stable, rng.binomial(n_stable, p)),
            look=1,
        )
        for _ in range(DRAWS)
    )
    rate = spent_alpha(ALPHA, 1)
    assert failures / DRAWS <= rate + margin(rate, DRAWS)


@SIMULATION
@given(st.floats(0.005, 0.1), st.floats(0.3, 1.0), st.integers(0, 2**32 - 1))
def test_identical_latency_fails_at_most_at_the_stated_rate_per_look(
    median: float, sigma: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    failures = 0
    for _ in range(DRAWS):
        canary = np.histogram(rng.lognormal(math.log(median), sigma, 40), [0, *BOUNDS])[0]
        stable = np.histogram(rng.lognormal(math.log(median), sigma, 360), [0, *BOUNDS])[0]
        m = LatencyHistograms(cumulative(canary.tolist()), cumulative(stable.tolist()))
        failures += fails(LATENCY, m, look=1)
    rate = spent_alpha(ALPHA, 1)
    assert failures / DRAWS <= rate + margin(rate, DRAWS)


@SIMULATION
@given(probabilities, st.integers(0, 2**32 - 1))
def test_identical_predictions_fail_a_whole_rollout_at_most_at_alpha(
    p: np.ndarray, seed: int
) -> None:
    """Twelve looks at growing cumulative counts, the canary's share of traffic rising."""
    rng = np.random.default_rng(seed)
    labels = [str(i) for i in range(len(p))]
    rollouts, looks = 500, 12
    ever_failed = 0
    for _ in range(rollouts):
        canary, stable = np.zeros(len(p)), np.zeros(len(p))
        for look in range(1, looks + 1):
            share = 0.1 if look <= 6 else 0.5
            canary += rng.multinomial(int(200 * share), p)
            stable += rng.multinomial(int(200 * (1 - share)), p)
            counts = ClassCounts.of(
                dict(zip(labels, canary.tolist(), strict=True)),
                dict(zip(labels, stable.tolist(), strict=True)),
            )
            if fails(DRIFT, counts, look):
                ever_failed += 1
                break
    assert ever_failed / rollouts <= ALPHA + margin(ALPHA, rollouts)


# --- assessment --------------------------------------------------------------------

verdicts = st.lists(st.sampled_from(list(Verdict)), max_size=6)


@given(verdicts, st.integers(0, 5), st.integers(1, 5))
def test_assess_fails_only_at_the_limit_and_passes_only_when_all_pass(
    round_: list[Verdict], before: int, limit: int
) -> None:
    results = [CheckResult(name=f"c{i}", verdict=v) for i, v in enumerate(round_)]
    got = assess(results, consecutive_failures=before, failure_limit=limit)
    failed = Verdict.FAILURE in round_
    assert (got.verdict is Verdict.FAILURE) == (failed and before + 1 >= limit)
    assert (got.verdict is Verdict.SUCCESS) == all(v is Verdict.SUCCESS for v in round_)
    assert got.consecutive_failures == (
        before + 1 if failed else 0 if got.verdict is Verdict.SUCCESS else before
    )
