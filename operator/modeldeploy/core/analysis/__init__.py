"""Canary analysis: measurements in, verdicts out. Pure: no I/O, no clock reads.

Sits in ``core`` beside the planner. Providers in ``adapters`` measure a check
against Prometheus or the serving metadata endpoint and return a
``Measurement`` (a ``MeasurementError`` when they cannot); ``evaluate`` turns
one measurement into a ``CheckResult``; ``assess`` turns a round of results
into the verdict the planner acts on. The statistical method and its
guarantees are described in ``statistics``.
"""

from .assessment import Assessment, assess
from .checks import (
    DEFAULT_ALPHA,
    DEFAULT_MAX_INCREASE,
    DEFAULT_MAX_PSI,
    DEFAULT_MAX_RATIO,
    DEFAULT_QUANTILE,
    contract_mismatches,
    evaluate,
)
from .measurements import (
    AnalysisProvider,
    AnalysisTarget,
    Buckets,
    ClassCounts,
    ContractProvider,
    Contracts,
    ErrorCounts,
    LatencyHistograms,
    Measurement,
    MeasurementError,
    ModelContract,
    Scalar,
    ScoreHistograms,
    TensorSpec,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MAX_INCREASE",
    "DEFAULT_MAX_PSI",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_QUANTILE",
    "AnalysisProvider",
    "AnalysisTarget",
    "Assessment",
    "Buckets",
    "ClassCounts",
    "ContractProvider",
    "Contracts",
    "ErrorCounts",
    "LatencyHistograms",
    "Measurement",
    "MeasurementError",
    "ModelContract",
    "Scalar",
    "ScoreHistograms",
    "TensorSpec",
    "assess",
    "contract_mismatches",
    "evaluate",
]
