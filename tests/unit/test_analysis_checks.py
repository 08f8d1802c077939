"""``evaluate``: one measurement in, one verdict out; one test per rule."""

from __future__ import annotations

import math
from typing import Any

import pytest

from modeldeploy.core.analysis import (
    ClassCounts,
    Contracts,
    ErrorCounts,
    LatencyHistograms,
    Measurement,
    MeasurementError,
    ModelContract,
    Scalar,
    ScoreHistograms,
    TensorSpec,
    evaluate,
)
from modeldeploy.core.api import CheckName, CheckResult, CheckSpec, DriftMethod, Verdict

S, F, HOLD = Verdict.SUCCESS, Verdict.FAILURE, Verdict.INCONCLUSIVE
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, math.inf)


def check(name: CheckName, **fields: Any) -> CheckSpec:
    return CheckSpec(name=name, **fields)


def run(spec: CheckSpec, m: Measurement, *, min_samples: int = 100, look: int = 1) -> CheckResult:
    return evaluate(spec, m, min_samples=min_samples, look=look)


def buckets(*per_bucket: float) -> tuple[tuple[float, float], ...]:
    """Cumulative buckets over BOUNDS from per-bucket counts."""
    assert len(per_bucket) == len(BOUNDS)
    total, out = 0.0, []
    for le, n in zip(BOUNDS, per_bucket, strict=True):
        total += n
        out.append((le, total))
    return tuple(out)


FAST = buckets(100, 400, 300, 150, 40, 8, 2, 0, 0)  # 1000 requests, p99 ~ 0.25s
SLOW = buckets(0, 20, 80, 300, 300, 200, 80, 20, 0)  # every request slower


# --- every check -------------------------------------------------------------


@pytest.mark.parametrize("name", list(CheckName))
def test_a_measurement_error_is_inconclusive_with_its_reason(name: CheckName) -> None:
    result = run(check(name, query="up", min=0), MeasurementError("Prometheus is down"))
    assert (result.verdict, result.reason) == (HOLD, "Prometheus is down")


@pytest.mark.parametrize(
    ("name", "measurement"),
    [
        (CheckName.ERROR_RATE, Scalar(1.0, 1000)),
        (CheckName.LATENCY, ErrorCounts(1000, 0, 1000, 0)),
        (CheckName.CONTRACT, ErrorCounts(1000, 0, 1000, 0)),
    ],
)
def test_a_measurement_of_the_wrong_kind_is_inconclusive(
    name: CheckName, measurement: Measurement
) -> None:
    assert run(check(name), measurement).verdict is HOLD


def test_the_result_is_named_by_the_alias() -> None:
    spec = check(CheckName.ERROR_RATE, alias="five-hundreds")
    assert run(spec, ErrorCounts(1000, 0, 1000, 0)).name == "five-hundreds"


# --- error-rate ------------------------------------------------------------------

ERROR_RATE = check(CheckName.ERROR_RATE)


@pytest.mark.parametrize(
    ("counts", "min_samples", "verdict"),
    [
        pytest.param((99, 0, 1000, 0), 100, HOLD, id="canary-below-min-samples"),
        pytest.param((1000, 0, 99, 0), 100, HOLD, id="stable-below-min-samples"),
        pytest.param((100, 0, 100, 0), 100, S, id="exactly-min-samples"),
        pytest.param((0, 0, 0, 0), 1, HOLD, id="no-traffic"),
        pytest.param((0, 0, 1000, 0), 0, HOLD, id="no-traffic-even-without-a-minimum"),
    ],
)
def test_error_rate_needs_min_samples_on_both_sides(
    counts: tuple[float, ...], min_samples: int, verdict: Verdict
) -> None:
    assert run(ERROR_RATE, ErrorCounts(*counts), min_samples=min_samples).verdict is verdict


@pytest.mark.parametrize(
    ("counts", "verdict"),
    [
        pytest.param((1000, 15, 9000, 60), S, id="rise-within-max-increase"),
        pytest.param((1000, 10, 9000, 0), S, id="rise-equal-to-max-increase"),
        pytest.param((1000, 0, 9000, 90), S, id="canary-better"),
    ],
)
def test_error_rate_within_max_increase_passes(counts: tuple[float, ...], verdict: Verdict) -> None:
    assert run(ERROR_RATE, ErrorCounts(*counts)).verdict is verdict


def test_error_rate_every_request_failing_fails_at_the_first_look_with_min_samples() -> None:
    result = run(ERROR_RATE, ErrorCounts(10, 10, 90, 0), min_samples=10, look=1)
    assert (result.verdict, result.value, result.stable_value, result.samples) == (F, 1, 0, 10)


def test_error_rate_significant_rise_fails() -> None:
    assert run(ERROR_RATE, ErrorCounts(1000, 60, 9000, 9)).verdict is F


def test_error_rate_suspicious_rise_that_is_not_yet_significant_holds() -> None:
    # 4 of 100 vs 5 of 900: nominally significant (p~0.01) but not at look 10's alpha.
    result = run(ERROR_RATE, ErrorCounts(100, 4, 900, 5), look=10)
    assert result.verdict is HOLD
    assert "holding" in result.reason


def test_error_rate_rise_within_sampling_noise_passes() -> None:
    # 1 of 20 over the limit, but one error is what stable's rate gives now and then.
    assert run(ERROR_RATE, ErrorCounts(20, 1, 180, 2), min_samples=20).verdict is S


def test_error_rate_later_looks_need_stronger_evidence() -> None:
    counts = ErrorCounts(200, 7, 1800, 9)  # p ~ 5e-4
    assert run(ERROR_RATE, counts, look=1).verdict is F
    assert run(ERROR_RATE, counts, look=40).verdict is HOLD


def test_error_rate_max_increase_is_configurable() -> None:
    counts = ErrorCounts(10000, 400, 10000, 100)  # +3 points, very significant
    assert run(ERROR_RATE, counts).verdict is F
    assert run(check(CheckName.ERROR_RATE, max_increase=0.05), counts).verdict is S


@pytest.mark.parametrize(
    "counts",
    [
        pytest.param((math.nan, 0, 1000, 0), id="nan"),
        pytest.param((1000, -1, 1000, 0), id="negative"),
        pytest.param((math.inf, 0, 1000, 0), id="infinite"),
    ],
)
def test_error_rate_invalid_counts_are_inconclusive(counts: tuple[float, ...]) -> None:
    assert run(ERROR_RATE, ErrorCounts(*counts)).verdict is HOLD


def test_error_rate_extrapolated_counts_are_rounded() -> None:
    # increase() answers 10.4 requests of which 10.6 failed: still "all of 10".
    result = run(ERROR_RATE, ErrorCounts(10.4, 10.6, 90.2, 0.3), min_samples=10)
    assert (result.verdict, result.value) == (F, 1.0)


# --- latency ---------------------------------------------------------------------

LATENCY = check(CheckName.LATENCY)


def test_latency_needs_min_samples() -> None:
    few = buckets(5, 5, 0, 0, 0, 0, 0, 0, 0)
    assert run(LATENCY, LatencyHistograms(few, FAST)).verdict is HOLD


def test_latency_of_an_empty_histogram_holds_even_without_a_minimum() -> None:
    empty = buckets(0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert run(LATENCY, LatencyHistograms(empty, FAST), min_samples=0).verdict is HOLD


def test_latency_same_distribution_passes() -> None:
    result = run(LATENCY, LatencyHistograms(FAST, FAST))
    assert result.verdict is S
    assert result.value == result.stable_value


def test_latency_significantly_slower_over_max_ratio_fails() -> None:
    result = run(LATENCY, LatencyHistograms(SLOW, FAST))
    assert result.verdict is F
    assert result.value is not None
    assert result.stable_value is not None
    assert result.value > 1.5 * result.stable_value


def test_latency_max_ratio_is_configurable() -> None:
    assert run(check(CheckName.LATENCY, max_ratio=10), LatencyHistograms(SLOW, FAST)).verdict is S


def test_latency_quantile_is_configurable() -> None:
    # Same tail, slower middle: p50 doubles while p99 stays.
    canary = buckets(0, 100, 400, 390, 98, 10, 2, 0, 0)
    stable = buckets(100, 400, 300, 188, 0, 10, 2, 0, 0)
    assert run(LATENCY, LatencyHistograms(canary, stable)).verdict is S
    median = check(CheckName.LATENCY, quantile=0.5)
    assert run(median, LatencyHistograms(canary, stable)).verdict is F


def test_latency_absolute_ceiling_fails_a_canary_as_slow_as_stable() -> None:
    ceiling = check(CheckName.LATENCY, max_seconds=0.2, max_ratio=10)
    assert run(ceiling, LatencyHistograms(SLOW, SLOW)).verdict is F


def test_latency_slower_over_the_limit_but_few_samples_holds() -> None:
    canary = buckets(0, 4, 6, 5, 3, 1, 1, 0, 0)  # 20 requests, slower (p ~ 0.006)
    result = run(LATENCY, LatencyHistograms(canary, FAST), min_samples=20, look=30)
    assert result.verdict is HOLD


def test_latency_over_the_limit_within_sampling_noise_passes() -> None:
    canary = buckets(1, 4, 8, 4, 2, 1, 0, 0, 0)  # 20 requests, one slow (p ~ 0.2)
    assert run(LATENCY, LatencyHistograms(canary, FAST), min_samples=20).verdict is S


@pytest.mark.parametrize(
    "canary",
    [
        pytest.param((), id="empty"),
        pytest.param(((0.1, 5.0), (0.5, 10.0)), id="no-inf-bucket"),
        pytest.param(((0.1, math.nan), (math.inf, 10.0)), id="nan-count"),
    ],
)
def test_latency_malformed_histograms_are_inconclusive(
    canary: tuple[tuple[float, float], ...],
) -> None:
    assert run(LATENCY, LatencyHistograms(canary, FAST)).verdict is HOLD


def test_latency_compares_only_shared_bounds() -> None:
    # The canary's serving image has an extra bucket; the shared ones still compare.
    extra = tuple(sorted((*FAST, (0.075, FAST[4][1] - 20))))
    assert run(LATENCY, LatencyHistograms(extra, FAST)).verdict is S


# --- prediction-drift ------------------------------------------------------------

DRIFT = check(CheckName.PREDICTION_DRIFT)
PSI = check(CheckName.PREDICTION_DRIFT, method=DriftMethod.PSI)
STABLE_CLASSES = {"cat": 6000.0, "dog": 3000.0, "fox": 1000.0}


def classes(cat: float, dog: float, fox: float) -> ClassCounts:
    return ClassCounts.of({"cat": cat, "dog": dog, "fox": fox}, STABLE_CLASSES)


def test_drift_needs_min_samples() -> None:
    assert run(DRIFT, classes(50, 30, 10)).verdict is HOLD


def test_drift_same_distribution_passes() -> None:
    assert run(DRIFT, classes(600, 300, 100)).verdict is S


def test_drift_chi_square_fails_a_significant_shift_and_names_the_class() -> None:
    result = run(DRIFT, classes(420, 300, 280))
    assert result.verdict is F
    assert (result.value, result.stable_value) == (0.28, 0.1)
    assert result.reason.startswith("fox")


def test_drift_psi_passes_a_significant_shift_under_the_limit() -> None:
    # Significant with 20,000 predictions, but PSI ~0.02 is within 0.2.
    counts = ClassCounts.of({"cat": 11000, "dog": 6000, "fox": 3000}, STABLE_CLASSES)
    assert run(DRIFT, counts).verdict is F
    assert run(PSI, counts).verdict is S


def test_drift_psi_fails_a_significant_shift_over_the_limit() -> None:
    assert run(PSI, classes(300, 300, 400)).verdict is F


def test_drift_psi_limit_is_configurable() -> None:
    assert (
        run(
            check(CheckName.PREDICTION_DRIFT, method="psi", max_psi=5), classes(300, 300, 400)
        ).verdict
        is S
    )


def test_drift_psi_over_the_limit_but_not_yet_significant_holds() -> None:
    counts = ClassCounts.of({"cat": 7, "dog": 5, "fox": 8}, STABLE_CLASSES)  # p ~ 0.02
    assert run(PSI, counts, min_samples=20, look=20).verdict is HOLD


def test_drift_psi_over_the_limit_within_sampling_noise_passes() -> None:
    counts = ClassCounts.of({"cat": 8, "dog": 4, "fox": 8}, STABLE_CLASSES)  # p ~ 0.07
    assert run(PSI, counts, min_samples=20, look=20).verdict is S


def test_drift_discounts_psi_expected_from_small_samples() -> None:
    # 20 identical-looking predictions have raw PSI ~0.1 from noise alone.
    counts = ClassCounts.of({"cat": 12, "dog": 6, "fox": 2}, {"cat": 12, "dog": 6, "fox": 2})
    result = run(PSI, counts, min_samples=20)
    assert result.verdict is S
    assert "PSI 0.000" in result.reason


def test_drift_counts_a_class_only_one_revision_predicts() -> None:
    counts = ClassCounts.of({"cat": 600, "dog": 300, "wolf": 100}, STABLE_CLASSES)
    result = run(DRIFT, counts)
    assert result.verdict is F
    assert result.reason.startswith("fox") or result.reason.startswith("wolf")


def test_drift_on_score_histograms() -> None:
    bounds = (0.25, 0.5, 0.75, 1.0, math.inf)
    stable = tuple(zip(bounds, (1000.0, 3000.0, 6000.0, 10000.0, 10000.0), strict=True))
    same = tuple(zip(bounds, (100.0, 300.0, 600.0, 1000.0, 1000.0), strict=True))
    lower = tuple(zip(bounds, (300.0, 600.0, 800.0, 1000.0, 1000.0), strict=True))
    assert run(DRIFT, ScoreHistograms(same, stable)).verdict is S
    assert run(DRIFT, ScoreHistograms(lower, stable)).verdict is F


def test_drift_invalid_counts_are_inconclusive() -> None:
    assert run(DRIFT, classes(math.nan, 300, 100)).verdict is HOLD


# --- custom ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "value", "verdict"),
    [
        pytest.param(None, 0.5, 0.4, S, id="under-max"),
        pytest.param(None, 0.5, 0.5, S, id="at-max"),
        pytest.param(None, 0.5, 0.6, F, id="over-max"),
        pytest.param(0.9, None, 0.95, S, id="over-min"),
        pytest.param(0.9, None, 0.8, F, id="under-min"),
        pytest.param(0.1, 0.2, 0.15, S, id="inside-range"),
        pytest.param(0.1, 0.2, 0.05, F, id="below-range"),
    ],
)
def test_custom_min_and_max_limits(
    low: float | None, high: float | None, value: float, verdict: Verdict
) -> None:
    spec = check(CheckName.CUSTOM, query="q", alias="q", min=low, max=high)
    result = run(spec, Scalar(value, 1000))
    assert (result.verdict, result.value) == (verdict, value)


def test_custom_needs_min_samples() -> None:
    spec = check(CheckName.CUSTOM, query="q", alias="q", max=0.5)
    assert run(spec, Scalar(0.9, 99)).verdict is HOLD


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_custom_non_finite_value_is_inconclusive(value: float) -> None:
    spec = check(CheckName.CUSTOM, query="q", alias="q", max=0.5)
    result = run(spec, Scalar(value, 1000))
    assert (result.verdict, result.value) == (HOLD, None)


# --- contract --------------------------------------------------------------------

CONTRACT = check(CheckName.CONTRACT)


def model(
    inputs: tuple[TensorSpec, ...] = (TensorSpec("input", "FP32", (-1, 4)),),
    outputs: tuple[TensorSpec, ...] = (TensorSpec("label", "INT64", (-1,)),),
) -> ModelContract:
    return ModelContract(inputs, outputs)


@pytest.mark.parametrize(
    ("canary", "verdict", "says"),
    [
        pytest.param(model(), S, "match", id="same"),
        pytest.param(
            model(outputs=(TensorSpec("label", "INT64", (-1,)), TensorSpec("p", "FP32", (-1, 3)))),
            S,
            "match",
            id="extra-output-is-harmless",
        ),
        pytest.param(model((TensorSpec("input", "FP64", (-1, 4)),)), F, "FP64", id="dtype"),
        pytest.param(model((TensorSpec("input", "FP32", (-1, 5)),)), F, "shape", id="shape"),
        pytest.param(model((TensorSpec("input", "FP32", (1, 4)),)), F, "shape", id="fixed-batch"),
        pytest.param(model((TensorSpec("x", "FP32", (-1, 4)),)), F, "gone", id="renamed-input"),
        pytest.param(
            model((TensorSpec("input", "FP32", (-1, 4)), TensorSpec("extra", "FP32", (-1,)))),
            F,
            "new",
            id="extra-input",
        ),
        pytest.param(model(outputs=()), F, "output 'label' is gone", id="missing-output"),
        pytest.param(
            model(outputs=(TensorSpec("label", "INT64", (-1, -1)),)), F, "shape", id="out-rank"
        ),
    ],
)
def test_contract_compares_what_stables_clients_rely_on(
    canary: ModelContract, verdict: Verdict, says: str
) -> None:
    result = run(CONTRACT, Contracts(canary, model()), min_samples=10_000)
    assert result.verdict is verdict
    assert says in result.reason


def test_contract_canary_may_accept_more_than_stable() -> None:
    stable = model((TensorSpec("input", "FP32", (1, 4)),))
    assert run(CONTRACT, Contracts(model(), stable)).verdict is S


def test_contract_datatype_case_does_not_matter() -> None:
    canary = model((TensorSpec("input", "fp32", (-1, 4)),))
    assert run(CONTRACT, Contracts(canary, model())).verdict is S
