"""The Prometheus provider against a scripted HTTP transport: parsing, retries, errors.

Real Prometheus answers are covered by tests/integration/test_prometheus_provider.py;
these tests script the answers a real server gives rarely (5xx, garbage, NaN).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from modeldeploy.adapters.prometheus import PrometheusAnalysisProvider
from modeldeploy.core.analysis import (
    AnalysisTarget,
    ClassCounts,
    ErrorCounts,
    LatencyHistograms,
    MeasurementError,
    Scalar,
    ScoreHistograms,
)
from modeldeploy.core.api import CheckName, CheckSpec

TARGET = AnalysisTarget("shop", "iris", "canary1", "stable1", 60)
ERROR_RATE = CheckSpec(name=CheckName.ERROR_RATE)
Handler = Callable[[httpx.Request], httpx.Response]


def vector(*items: tuple[dict[str, str], float | str]) -> dict[str, Any]:
    result = [{"metric": labels, "value": [1.0, str(value)]} for labels, value in items]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def ok(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=body)


class Script:
    """Answers each query by the first matching metric name; records every request."""

    def __init__(self, answers: dict[str, Handler | dict[str, Any]]) -> None:
        self.answers = answers
        self.queries: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        query = dict(httpx.QueryParams(request.content.decode()))["query"]
        self.queries.append(query)
        for needle, answer in self.answers.items():
            if needle in query:
                return answer(request) if callable(answer) else ok(answer)
        return ok(vector())


def provider(script: Script, retries: int = 2) -> PrometheusAnalysisProvider:
    return PrometheusAnalysisProvider(
        "http://prometheus.test:9090/",
        retries=retries,
        backoff_seconds=0,
        transport=httpx.MockTransport(script),
    )


async def measure(script: Script, check: CheckSpec = ERROR_RATE, retries: int = 2) -> Any:
    async with provider(script, retries) as p:
        return await p.measure(check, TARGET)


def c(revision: str, **labels: str) -> dict[str, str]:
    return {"revision": revision, **labels}


# --- measurements ------------------------------------------------------------------


async def test_error_counts_count_5xx_only() -> None:
    script = Script(
        {
            "requests_total": vector(
                (c("canary1", code="200"), 90),
                (c("canary1", code="500"), 6),
                (c("canary1", code="503"), 1),
                (c("canary1", code="404"), 3),
                (c("stable1", code="200"), 880),
                (c("stable1", code="400"), 20),
            )
        }
    )
    assert await measure(script) == ErrorCounts(100, 7, 900, 0)


async def test_error_counts_of_a_revision_without_series_are_zero() -> None:
    script = Script({"requests_total": vector((c("stable1", code="200"), 900))})
    assert await measure(script) == ErrorCounts(0, 0, 900, 0)


async def test_latency_buckets_per_revision_sorted_by_bound() -> None:
    script = Script(
        {
            "duration_seconds_bucket": vector(
                (c("canary1", le="+Inf"), 10),
                (c("canary1", le="0.1"), 8),
                (c("stable1", le="0.1"), 85),
                (c("stable1", le="+Inf"), 90),
            )
        }
    )
    got = await measure(script, CheckSpec(name=CheckName.LATENCY))
    assert got == LatencyHistograms(((0.1, 8), (math.inf, 10)), ((0.1, 85), (math.inf, 90)))


async def test_a_revision_without_latency_series_gets_an_empty_histogram() -> None:
    script = Script(
        {
            "duration_seconds_bucket": vector(
                (c("stable1", le="0.1"), 5), (c("stable1", le="+Inf"), 9)
            )
        }
    )
    got = await measure(script, CheckSpec(name=CheckName.LATENCY))
    assert got.canary_buckets == ((0.1, 0.0), (math.inf, 0.0))


async def test_drift_reads_class_counts() -> None:
    script = Script(
        {
            "predictions_total": vector(
                (c("canary1", **{"class": "cat"}), 6),
                (c("stable1", **{"class": "cat"}), 50),
                (c("stable1", **{"class": "dog"}), 40),
            )
        }
    )
    got = await measure(script, CheckSpec(name=CheckName.PREDICTION_DRIFT))
    assert got == ClassCounts.of({"cat": 6}, {"cat": 50, "dog": 40})


async def test_drift_falls_back_to_the_score_histogram_without_class_series() -> None:
    script = Script(
        {
            "prediction_score_bucket": vector(
                (c("canary1", le="0.5"), 3),
                (c("canary1", le="+Inf"), 10),
                (c("stable1", le="0.5"), 40),
                (c("stable1", le="+Inf"), 90),
            )
        }
    )
    got = await measure(script, CheckSpec(name=CheckName.PREDICTION_DRIFT))
    assert isinstance(got, ScoreHistograms)
    assert got.stable_buckets == ((0.5, 40), (math.inf, 90))
    assert any("predictions_total" in q for q in script.queries)


async def test_custom_renders_placeholders_and_counts_canary_requests() -> None:
    script = Script(
        {
            "my_metric": {
                "status": "success",
                "data": {"resultType": "scalar", "result": [1, "0.25"]},
            },
            "requests_total": vector(({}, 321)),
        }
    )
    check = CheckSpec(
        name=CheckName.CUSTOM,
        alias="mine",
        query='my_metric{namespace="{{namespace}}", revision="{{revision}}"}[{{interval}}]',
        max=1,
    )
    assert await measure(script, check) == Scalar(0.25, 321)
    assert script.queries[0] == 'my_metric{namespace="shop", revision="canary1"}[60s]'


async def test_custom_needs_exactly_one_series() -> None:
    script = Script({"my_metric": vector(({"a": "1"}, 1), ({"a": "2"}, 2))})
    check = CheckSpec(name=CheckName.CUSTOM, alias="mine", query="my_metric", max=1)
    got = await measure(script, check)
    assert isinstance(got, MeasurementError)
    assert "exactly one" in got.reason


async def test_custom_with_an_unknown_placeholder_is_a_measurement_error() -> None:
    check = CheckSpec(name=CheckName.CUSTOM, alias="mine", query="x{{nope}}", max=1)
    got = await measure(Script({}), check)
    assert isinstance(got, MeasurementError)
    assert "unknown placeholder" in got.reason


async def test_contract_is_not_measured_by_prometheus() -> None:
    got = await measure(Script({}), CheckSpec(name=CheckName.CONTRACT))
    assert isinstance(got, MeasurementError)
    assert "metadata" in got.reason


# --- everything that goes wrong becomes a MeasurementError ---------------------------


def failing(status: int, body: str = "") -> Handler:
    return lambda _: httpx.Response(status, text=body)


def raising(exc: Exception) -> Handler:
    def handler(_: httpx.Request) -> httpx.Response:
        raise exc

    return handler


PROMETHEUS_ERROR = json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"})


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        pytest.param(vector(), "no series", id="empty"),
        pytest.param(vector((c("canary1", code="200"), "NaN")), "NaN", id="nan"),
        pytest.param(failing(400, PROMETHEUS_ERROR), "bad_data: parse error", id="rejected"),
        pytest.param(failing(503), "HTTP 503", id="unavailable"),
        pytest.param(failing(200, "<html>"), "not JSON", id="not-json"),
        pytest.param(failing(200, "[1, 2]"), "not an API response", id="not-an-object"),
        pytest.param(
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            "instant vector",
            id="matrix",
        ),
        pytest.param({"status": "success", "data": {}}, "unexpected result", id="no-result"),
        pytest.param(raising(httpx.ConnectError("refused")), "unreachable", id="refused"),
        pytest.param(raising(httpx.ReadTimeout("slow")), "did not answer in 5.0s", id="timeout"),
        pytest.param(raising(RuntimeError("bug")), "RuntimeError", id="anything-else"),
    ],
)
async def test_failures_become_measurement_errors(
    answer: Handler | dict[str, Any], says: str
) -> None:
    got = await measure(Script({"requests_total": answer}))
    assert isinstance(got, MeasurementError)
    assert says in got.reason


@pytest.mark.parametrize(
    ("answer", "attempts"),
    [
        pytest.param(failing(503), 3, id="5xx-retried"),
        pytest.param(failing(429), 3, id="throttled-retried"),
        pytest.param(raising(httpx.ConnectError("refused")), 3, id="transport-retried"),
        pytest.param(failing(400, PROMETHEUS_ERROR), 1, id="rejected-not-retried"),
    ],
)
async def test_retries_are_bounded(answer: Handler, attempts: int) -> None:
    script = Script({"requests_total": answer})
    got = await measure(script, retries=2)
    assert isinstance(got, MeasurementError)
    assert len(script.queries) == attempts


async def test_a_transient_failure_is_retried_into_an_answer() -> None:
    answers = iter([httpx.Response(502), ok(vector((c("canary1", code="200"), 5)))])
    script = Script({"requests_total": lambda _: next(answers)})
    assert await measure(script) == ErrorCounts(5, 0, 0, 0)
