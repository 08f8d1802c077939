"""Prometheus as the analysis provider: instant queries over httpx, never raising.

Sits in ``adapters`` and implements ``core.analysis.AnalysisProvider``: for one
check and one canary it runs the named queries from ``queries`` and returns
the ``Measurement`` that check's rule reads. Every fault of the outside world
(refused connection, timeout, a 5xx, an error answer, JSON that is not
Prometheus's, no series, NaN) comes back as ``MeasurementError`` with a reason
for status, so a handler never dies of a flaky Prometheus and a check says
``Inconclusive``. Transport errors, timeouts and 5xx/429 answers are retried a
bounded number of times with a short backoff; a rejected query is not.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from modeldeploy.core.analysis import (
    AnalysisTarget,
    Buckets,
    ClassCounts,
    ErrorCounts,
    LatencyHistograms,
    Measurement,
    MeasurementError,
    Scalar,
    ScoreHistograms,
)
from modeldeploy.core.api import CheckName, CheckSpec, PrometheusSpec

from .queries import Query, TemplateError, builtin, render, window

QUERY_PATH = "/api/v1/query"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class UnavailableError(Exception):
    """Internal: a query gave no usable answer; ``measure`` turns it into a measurement."""


class NoSeriesError(UnavailableError):
    """Prometheus answered, but no series matched."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant-query answer."""

    labels: Mapping[str, str]
    value: float


class PrometheusAnalysisProvider:
    """Measures error-rate, latency, prediction-drift and custom checks from Prometheus."""

    def __init__(
        self,
        address: str,
        *,
        timeout_seconds: float = 5.0,
        retries: int = 2,
        backoff_seconds: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.address = address.rstrip("/")
        self.timeout_seconds = timeout_seconds
        # Prometheus parses durations like "1500ms" but refuses "2.0s".
        self._server_timeout = f"{max(1, round(timeout_seconds * 1000))}ms"
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._client = httpx.AsyncClient(
            base_url=self.address, timeout=httpx.Timeout(timeout_seconds), transport=transport
        )

    @classmethod
    def from_spec(cls, spec: PrometheusSpec) -> PrometheusAnalysisProvider:
        return cls(spec.address, timeout_seconds=spec.timeout_seconds)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> PrometheusAnalysisProvider:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # --- the provider interface ----------------------------------------------

    async def measure(self, check: CheckSpec, target: AnalysisTarget) -> Measurement:
        """The measurement ``check`` needs for ``target``; never raises."""
        try:
            return await self._measure(check, target)
        except (UnavailableError, TemplateError) as exc:
            return MeasurementError(str(exc))
        except Exception as exc:  # a handler must survive any surprise from here
            return MeasurementError(f"measuring {check.key} failed: {exc!r}")

    async def _measure(self, check: CheckSpec, target: AnalysisTarget) -> Measurement:
        if check.name is CheckName.ERROR_RATE:
            return await self.error_counts(target)
        if check.name is CheckName.LATENCY:
            return await self.latency(target)
        if check.name is CheckName.PREDICTION_DRIFT:
            return await self.predictions(target)
        if check.name is CheckName.CUSTOM:
            return await self.custom(check, target)
        return MeasurementError(
            f"{check.name.value} is measured from the serving metadata endpoint, not Prometheus"
        )

    # --- one method per built-in measurement -------------------------------------

    async def error_counts(self, target: AnalysisTarget) -> ErrorCounts:
        samples = await self._builtin(Query.REQUESTS_BY_CODE, target)
        totals: dict[str, float] = defaultdict(float)
        errors: dict[str, float] = defaultdict(float)
        for sample in samples:
            revision = sample.labels.get("revision", "")
            totals[revision] += sample.value
            # 5xx only: a client's 4xx is not the model's fault.
            if sample.labels.get("code", "").startswith("5"):
                errors[revision] += sample.value
        canary, stable = target.revision, target.stable_revision
        return ErrorCounts(totals[canary], errors[canary], totals[stable], errors[stable])

    async def latency(self, target: AnalysisTarget) -> LatencyHistograms:
        samples = await self._builtin(Query.LATENCY_BUCKETS, target)
        canary, stable = _histograms(samples, target)
        return LatencyHistograms(canary, stable)

    async def predictions(self, target: AnalysisTarget) -> ClassCounts | ScoreHistograms:
        """Class counts for classifiers; the score histogram when no class series exist."""
        try:
            samples = await self._builtin(Query.PREDICTIONS_BY_CLASS, target)
        except NoSeriesError:
            scores = await self._builtin(Query.SCORE_BUCKETS, target)
            canary_b, stable_b = _histograms(scores, target)
            return ScoreHistograms(canary_b, stable_b)
        counts: dict[str, dict[str, float]] = defaultdict(dict)
        for sample in samples:
            revision = sample.labels.get("revision", "")
            label = sample.labels.get("class", "")
            counts[revision][label] = counts[revision].get(label, 0.0) + sample.value
        return ClassCounts.of(counts[target.revision], counts[target.stable_revision])

    async def custom(self, check: CheckSpec, target: AnalysisTarget) -> Scalar:
        if check.query is None:
            raise UnavailableError(f"custom check {check.key} has no query")
        samples = await self._run(render(check.query, target), f"custom check {check.key}")
        if len(samples) != 1:
            raise UnavailableError(
                f"custom check {check.key}: the query returned {len(samples)} series, "
                "it must return exactly one (wrap it in sum() or similar)"
            )
        try:
            requests = await self._builtin(Query.CANARY_REQUESTS, target)
        except NoSeriesError:
            requests = []
        return Scalar(samples[0].value, sum(s.value for s in requests))

    # --- queries ----------------------------------------------------------------

    async def _builtin(self, query: Query, target: AnalysisTarget) -> list[Sample]:
        samples = await self._run(builtin(query, target), query.value)
        if not samples:
            raise NoSeriesError(
                f"{query.value}: no series for {target.namespace}/{target.name} revisions "
                f"{target.revision} and {target.stable_revision} in the last "
                f"{window(target.window_seconds)} (is Prometheus scraping them with the "
                "namespace/modeldeployment/revision labels?)"
            )
        return samples

    async def _run(self, promql: str, what: str) -> list[Sample]:
        samples = await self.query(promql)
        if any(math.isnan(s.value) for s in samples):
            raise UnavailableError(f"{what}: Prometheus answered NaN")
        return samples

    async def query(self, promql: str) -> list[Sample]:
        """One instant query, retried on transient faults; raises ``UnavailableError``."""
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = await self._client.post(
                    QUERY_PATH, data={"query": promql, "timeout": self._server_timeout}
                )
            except httpx.TimeoutException:
                reason = f"Prometheus at {self.address} did not answer in {self.timeout_seconds}s"
                continue
            except httpx.HTTPError as exc:
                reason = f"Prometheus at {self.address} is unreachable: {exc!r}"
                continue
            if response.status_code in RETRYABLE_STATUS:
                reason = f"Prometheus at {self.address} answered HTTP {response.status_code}"
                continue
            return _parse(response)
        raise UnavailableError(f"{reason} (tried {self.retries + 1} times)")


# --- parsing ----------------------------------------------------------------------


def _parse(response: httpx.Response) -> list[Sample]:
    """Samples of an instant-query answer (vector or scalar)."""
    try:
        body = response.json()
    except ValueError:
        raise UnavailableError(
            f"Prometheus answered HTTP {response.status_code} with a body that is not JSON"
        ) from None
    if not isinstance(body, dict):
        raise UnavailableError("Prometheus answered JSON that is not an API response")
    if body.get("status") != "success":
        raise UnavailableError(
            f"Prometheus rejected the query (HTTP {response.status_code}): "
            f"{body.get('errorType', 'error')}: {body.get('error', 'no reason given')}"
        )
    data = body.get("data")
    try:
        return _samples(data)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise UnavailableError(f"Prometheus answered an unexpected result: {exc!r}") from None


def _samples(data: Any) -> list[Sample]:
    kind = data["resultType"]
    result = data["result"]
    if kind == "scalar":
        return [Sample({}, float(result[1]))]
    if kind != "vector":
        raise ValueError(f"result type {kind!r}; analysis needs an instant vector or a scalar")
    return [Sample(dict(item["metric"]), float(item["value"][1])) for item in result]


def _histograms(samples: Sequence[Sample], target: AnalysisTarget) -> tuple[Buckets, Buckets]:
    """Cumulative buckets per revision; a revision without series gets zero counts."""
    by_revision: dict[str, dict[float, float]] = defaultdict(dict)
    for sample in samples:
        le = float(sample.labels["le"])
        revision = sample.labels.get("revision", "")
        by_revision[revision][le] = by_revision[revision].get(le, 0.0) + sample.value
    bounds = sorted({le for buckets in by_revision.values() for le in buckets})

    def buckets(revision: str) -> Buckets:
        counts = by_revision.get(revision)
        if not counts:
            return tuple((le, 0.0) for le in bounds)
        return tuple(sorted(counts.items()))

    return buckets(target.revision), buckets(target.stable_revision)
