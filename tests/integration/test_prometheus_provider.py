"""The Prometheus provider against a real Prometheus scraping the metric contract.

A Debian ``prometheus`` is started on a free loopback port with a temporary
config and data directory. It scrapes four ``ServingExporter`` instances every
second (two ModelDeployments, a canary and a stable revision each) and adds
the ``namespace``, ``modeldeployment`` and ``revision`` labels from its scrape
configuration, as the chart's PodMonitor does in a cluster. Every built-in
query must return what its check expects, and the checks must judge those
measurements; a stopped or silent Prometheus must give ``Inconclusive``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exporter import LATENCY_BUCKETS, SCORE_BUCKETS, ServingExporter
from modeldeploy.adapters.prometheus import PrometheusAnalysisProvider
from modeldeploy.adapters.queries import Query, builtin
from modeldeploy.core.analysis import (
    AnalysisTarget,
    ClassCounts,
    ErrorCounts,
    LatencyHistograms,
    MeasurementError,
    Scalar,
    ScoreHistograms,
    evaluate,
)
from modeldeploy.core.api import CheckName, CheckSpec, DriftMethod, Verdict
from prometheus_env import PrometheusServer, wait_for

NAMESPACE = "shop"


@dataclass
class Revision:
    """One scraped revision: its exporter and the labels Prometheus adds."""

    deployment: str
    revision: str
    exporter: ServingExporter

    @property
    def labels(self) -> dict[str, str]:
        return {
            "namespace": NAMESPACE,
            "modeldeployment": self.deployment,
            "revision": self.revision,
        }


# --- the scenario: recorded once, queried by every test ----------------------------


@dataclass
class Scenario:
    prometheus: PrometheusServer
    started: float
    iris: tuple[Revision, Revision]  # classifier: canary broken in every way
    scores: tuple[Revision, Revision]  # no classes: canary identical to stable

    def target(self, pair: tuple[Revision, Revision]) -> AnalysisTarget:
        canary, stable = pair
        # Like the planner: the window runs from the first traffic to now.
        window = time.monotonic() - self.started + 5
        return AnalysisTarget(
            NAMESPACE, canary.deployment, canary.revision, stable.revision, window
        )


def record_iris(canary: ServingExporter, stable: ServingExporter) -> None:
    """Canary: 6% 5xx, ten times slower, predictions drifted. Stable: healthy."""
    canary.request(code="200", seconds=0.3, n=180)
    canary.request(code="500", seconds=0.3, n=12)
    canary.request(code="400", endpoint="predict", seconds=0.3, n=8)
    stable.request(code="200", seconds=0.02, n=985)
    stable.request(code="500", seconds=0.02, n=1)
    stable.request(code="400", endpoint="predict", seconds=0.02, n=14)
    for label, n_canary, n_stable in (
        ("setosa", 50, 600),
        ("versicolor", 50, 300),
        ("virginica", 100, 100),
    ):
        canary.predict(label, n=n_canary)
        stable.predict(label, n=n_stable)


def record_scores(canary: ServingExporter, stable: ServingExporter) -> None:
    """A regressor-like model without classes; both revisions behave the same."""
    for exporter, scale in ((canary, 1), (stable, 5)):
        exporter.request(code="200", seconds=0.02, n=100 * scale)
        for score, n in ((0.15, 20), (0.55, 30), (0.95, 50)):
            exporter.predict(None, score=score, n=n * scale)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    iris = (
        Revision("iris", "c0ffee1", ServingExporter("iris", "v2")),
        Revision("iris", "5ab1e01", ServingExporter("iris", "v1")),
    )
    scores = (
        Revision("scores", "aaa111", ServingExporter("scores", "v2", classes=())),
        Revision("scores", "bbb222", ServingExporter("scores", "v1", classes=())),
    )
    revisions = [*iris, *scores]
    for r in revisions:
        r.exporter.start()
    prometheus = PrometheusServer(
        tmp_path_factory.mktemp("prometheus"), [(r.exporter.port, r.labels) for r in revisions]
    )
    try:
        # Two scrapes of the zeroed series first, so every increase starts from 0.
        wait_for(
            "two scrapes of every target",
            lambda: (
                prometheus.value("count(up == 1)") == len(revisions)
                and (prometheus.value("min(count_over_time(up[1m]))") or 0) >= 2
            ),
        )
        started = time.monotonic()
        record_iris(iris[0].exporter, iris[1].exporter)
        record_scores(scores[0].exporter, scores[1].exporter)
        wait_for(
            "Prometheus to scrape the recorded traffic",
            lambda: prometheus.value("sum(modeldeploy_inference_requests_total)") == 1800,
        )
        # increase() extrapolates up to one scrape past the last sample; ten more
        # scrapes keep that within 10% of the recorded counts.
        scrapes = 'count_over_time(up{revision="c0ffee1"}[1h])'
        seen = prometheus.value(scrapes) or 0
        wait_for("ten more scrapes", lambda: (prometheus.value(scrapes) or 0) >= seen + 10)
        yield Scenario(prometheus, started, iris, scores)
    finally:
        prometheus.stop()
        for r in revisions:
            r.exporter.stop()


@pytest.fixture
async def provider(scenario: Scenario) -> AsyncIterator[PrometheusAnalysisProvider]:
    async with PrometheusAnalysisProvider(scenario.prometheus.url, timeout_seconds=5) as p:
        yield p


def judge(check: CheckSpec, measurement: Any) -> Verdict:
    return evaluate(check, measurement, min_samples=100, look=1).verdict


# --- every built-in query against the real server ----------------------------------


@pytest.mark.parametrize("query", list(Query))
async def test_every_builtin_query_is_accepted_and_answers(
    scenario: Scenario, provider: PrometheusAnalysisProvider, query: Query
) -> None:
    pair = scenario.scores if query is Query.SCORE_BUCKETS else scenario.iris
    samples = await provider.query(builtin(query, scenario.target(pair)))
    assert samples
    assert all(math.isfinite(s.value) for s in samples)


async def test_error_rate_counts_5xx_of_both_revisions(
    scenario: Scenario, provider: PrometheusAnalysisProvider
) -> None:
    check = CheckSpec(name=CheckName.ERROR_RATE)
    m = await provider.measure(check, scenario.target(scenario.iris))
    assert isinstance(m, ErrorCounts)
    # increase() extrapolates the totals a little; shares of one target stay exact.
    assert m.canary_total == pytest.approx(200, rel=0.15)
    assert m.stable_total == pytest.approx(1000, rel=0.15)
    assert m.canary_errors / m.canary_total == pytest.approx(12 / 200)
    assert m.stable_errors / m.stable_total == pytest.approx(1 / 1000)
    assert judge(check, m) is Verdict.FAILURE


async def test_latency_reads_both_histograms(
    scenario: Scenario, provider: PrometheusAnalysisProvider
) -> None:
    check = CheckSpec(name=CheckName.LATENCY)
    m = await provider.measure(check, scenario.target(scenario.iris))
    assert isinstance(m, LatencyHistograms)
    assert [le for le, _ in m.canary_buckets] == [*LATENCY_BUCKETS, math.inf]
    assert [le for le, _ in m.stable_buckets] == [*LATENCY_BUCKETS, math.inf]
    canary = dict(m.canary_buckets)
    assert canary[0.25] == 0  # every canary request took 0.3 s
    assert canary[0.5] == pytest.approx(200, rel=0.15)
    assert dict(m.stable_buckets)[0.025] == pytest.approx(1000, rel=0.15)
    result = evaluate(check, m, min_samples=100, look=1)
    assert result.verdict is Verdict.FAILURE
    assert result.value is not None
    assert 0.25 < result.value <= 0.5


async def test_drift_reads_class_counts(
    scenario: Scenario, provider: PrometheusAnalysisProvider
) -> None:
    check = CheckSpec(name=CheckName.PREDICTION_DRIFT)
    m = await provider.measure(check, scenario.target(scenario.iris))
    assert isinstance(m, ClassCounts)
    canary, stable = dict(m.canary), dict(m.stable)
    assert set(canary) == set(stable) == {"setosa", "versicolor", "virginica"}
    assert canary["virginica"] / sum(canary.values()) == pytest.approx(0.5)
    assert stable["setosa"] / sum(stable.values()) == pytest.approx(0.6)
    assert judge(check, m) is Verdict.FAILURE


async def test_drift_without_classes_reads_score_histograms(
    scenario: Scenario, provider: PrometheusAnalysisProvider
) -> None:
    check = CheckSpec(name=CheckName.PREDICTION_DRIFT, method=DriftMethod.PSI)
    m = await provider.measure(check, scenario.target(scenario.scores))
    assert isinstance(m, ScoreHistograms)
    assert [le for le, _ in m.canary_buckets] == [*SCORE_BUCKETS, math.inf]
    assert m.canary_buckets[-1][1] == pytest.approx(100, rel=0.15)
    assert judge(check, m) is Verdict.SUCCESS


async def test_custom_query_with_placeholders(
    scenario: Scenario, provider: PrometheusAnalysisProvider
) -> None:
    check = CheckSpec(
        name=CheckName.CUSTOM,
        alias="canary-4xx-share",
        query=(
            'sum(increase(modeldeploy_inference_requests_total{namespace="{{namespace}}", '
            'modeldeployment="{{name}}", revision="{{revision}}", code=~"4.."}[{{interval}}]))'
            " / sum(increase(modeldeploy_inference_requests_total{"
            'namespace="{{namespace}}", modeldeployment="{{name}}", '
            'revision="{{revision}}"}[{{interval}}]))'
        ),
        max=0.05,
    )
    m = await provider.measure(check, scenario.target(scenario.iris))
    assert isinstance(m, Scalar)
    assert m.value == pytest.approx(8 / 200)
    assert m.samples == pytest.approx(200, rel=0.15)
    assert judge(check, m) is Verdict.SUCCESS


async def test_a_custom_query_about_stable_uses_stable_revision(
    scenario: Scenario, provider: PrometheusAnalysisProvider
) -> None:
    check = CheckSpec(
        name=CheckName.CUSTOM,
        alias="stable-requests",
        query='sum(modeldeploy_inference_requests_total{revision="{{stableRevision}}"})',
        min=1000,
    )
    m = await provider.measure(check, scenario.target(scenario.iris))
    assert isinstance(m, Scalar)
    assert m.value == 1000


async def test_unknown_revisions_are_inconclusive(
    scenario: Scenario, provider: PrometheusAnalysisProvider
) -> None:
    target = AnalysisTarget(NAMESPACE, "iris", "nope1", "nope2", 60)
    for name in (CheckName.ERROR_RATE, CheckName.LATENCY, CheckName.PREDICTION_DRIFT):
        m = await provider.measure(CheckSpec(name=name), target)
        assert isinstance(m, MeasurementError)
        assert "no series" in m.reason
        assert judge(CheckSpec(name=name), m) is Verdict.INCONCLUSIVE


async def test_a_rejected_query_is_inconclusive(
    scenario: Scenario, provider: PrometheusAnalysisProvider
) -> None:
    check = CheckSpec(name=CheckName.CUSTOM, alias="broken", query="sum(rate(x[", max=1)
    m = await provider.measure(check, scenario.target(scenario.iris))
    assert isinstance(m, MeasurementError)
    assert "bad_data" in m.reason


# --- a Prometheus that is gone or silent --------------------------------------------


async def test_a_stopped_prometheus_is_inconclusive(tmp_path: Path) -> None:
    exporter = ServingExporter()
    exporter.start()
    revision = Revision("iris", "c0ffee1", exporter)
    prometheus = PrometheusServer(tmp_path, [(revision.exporter.port, revision.labels)])
    try:
        target = AnalysisTarget(NAMESPACE, "iris", "c0ffee1", "5ab1e01", 60)
        check = CheckSpec(name=CheckName.ERROR_RATE)
        async with PrometheusAnalysisProvider(
            prometheus.url, timeout_seconds=2, retries=1, backoff_seconds=0
        ) as provider:
            assert isinstance(
                await provider.measure(check, target), (ErrorCounts, MeasurementError)
            )
            prometheus.stop()
            m = await provider.measure(check, target)
        assert isinstance(m, MeasurementError)
        assert "unreachable" in m.reason
        assert judge(check, m) is Verdict.INCONCLUSIVE
    finally:
        prometheus.stop()
        exporter.stop()


async def test_a_prometheus_that_never_answers_is_inconclusive() -> None:
    # A listener that accepts and stays silent, like a Prometheus stuck on a heavy query.
    done = asyncio.Event()

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await done.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with PrometheusAnalysisProvider(
            f"http://127.0.0.1:{port}", timeout_seconds=0.5, retries=1, backoff_seconds=0
        ) as provider:
            m = await provider.measure(
                CheckSpec(name=CheckName.LATENCY),
                AnalysisTarget(NAMESPACE, "iris", "c0ffee1", "5ab1e01", 60),
            )
        assert isinstance(m, MeasurementError)
        assert "did not answer in 0.5s (tried 2 times)" in m.reason
    finally:
        done.set()
        server.close()
        await server.wait_closed()
