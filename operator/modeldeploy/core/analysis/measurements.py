"""Measurements: what a provider reads for one check, as immutable values.

Sits in ``core.analysis``, below the checks: providers in ``adapters`` (the
Prometheus provider, the model metadata probe) produce these values and
``checks.evaluate`` turns one of them into a verdict. Counts are cumulative
over the analysis window, which starts when the canary first got traffic, and
always come in pairs: the canary and the stable revision over the same window.

A provider that cannot measure (unreachable, slow, an error answer, no series,
NaN) returns ``MeasurementError`` instead of raising: missing data is recorded
as a measurement, and a check turns it into ``Inconclusive``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..api import CheckSpec

# Cumulative histogram buckets as Prometheus keeps them: ``(le, count)`` pairs,
# ``le`` ascending and the last one ``+Inf`` (its count is the total).
Buckets = tuple[tuple[float, float], ...]

INF = math.inf


@dataclass(frozen=True)
class AnalysisTarget:
    """Which series to compare: one ModelDeployment's canary and stable revision."""

    namespace: str
    name: str
    revision: str
    stable_revision: str
    window_seconds: float


@dataclass(frozen=True)
class ErrorCounts:
    """Requests and 5xx answers (4xx excluded) of both revisions."""

    canary_total: float
    canary_errors: float
    stable_total: float
    stable_errors: float


@dataclass(frozen=True)
class LatencyHistograms:
    """Request-duration histograms (seconds) of both revisions."""

    canary_buckets: Buckets
    stable_buckets: Buckets


@dataclass(frozen=True)
class ClassCounts:
    """Predicted rows per class of both revisions, as ``(class, count)`` pairs."""

    canary: tuple[tuple[str, float], ...]
    stable: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, canary: Mapping[str, float], stable: Mapping[str, float]) -> ClassCounts:
        return cls(tuple(sorted(canary.items())), tuple(sorted(stable.items())))


@dataclass(frozen=True)
class ScoreHistograms:
    """Prediction-score histograms of both revisions (for models without classes)."""

    canary_buckets: Buckets
    stable_buckets: Buckets


@dataclass(frozen=True)
class Scalar:
    """A custom query's value and the canary's request count over the window."""

    value: float
    samples: float


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model as the serving metadata endpoint describes it.

    ``-1`` in ``shape`` is a dynamic dimension (any size).
    """

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelContract:
    """A revision's model interface: what clients send and what they get back."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class Contracts:
    canary: ModelContract
    stable: ModelContract


@dataclass(frozen=True)
class MeasurementError:
    """The provider could not measure; ``reason`` says why, for status."""

    reason: str


Measurement = (
    ErrorCounts
    | LatencyHistograms
    | ClassCounts
    | ScoreHistograms
    | Scalar
    | Contracts
    | MeasurementError
)


class AnalysisProvider(Protocol):
    """Measures one metric-based check (error-rate, latency, prediction-drift, custom)."""

    async def measure(self, check: CheckSpec, target: AnalysisTarget) -> Measurement:
        """Never raises for the outside world's faults: they become ``MeasurementError``."""
        ...


class ContractProvider(Protocol):
    """Reads both revisions' model contracts from their serving metadata endpoints."""

    async def contracts(
        self, canary_url: str, stable_url: str, model_name: str
    ) -> Contracts | MeasurementError: ...
