"""The PromQL that canary analysis runs, named and in one place.

Sits in ``adapters`` beside the Prometheus provider. Built-in queries are
templates with the same ``{{placeholder}}`` syntax as custom checks, so one
renderer serves both. Every template selects series by the metric label
contract (``namespace``, ``modeldeployment``, ``revision``) and sums over
``increase(...[{{interval}}])``, where ``{{interval}}`` is the analysis window
(since the canary first got traffic): checks compare cumulative counts.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum

from modeldeploy.core.analysis import AnalysisTarget


class Query(StrEnum):
    """The built-in queries, by what they answer."""

    REQUESTS_BY_CODE = "requests-by-code"
    LATENCY_BUCKETS = "latency-buckets"
    PREDICTIONS_BY_CLASS = "predictions-by-class"
    SCORE_BUCKETS = "score-buckets"
    CANARY_REQUESTS = "canary-requests"


_BOTH = (
    'namespace="{{namespace}}", modeldeployment="{{name}}", '
    'revision=~"{{revision}}|{{stableRevision}}"'
)
_CANARY = 'namespace="{{namespace}}", modeldeployment="{{name}}", revision="{{revision}}"'

TEMPLATES: dict[Query, str] = {
    # Both revisions, split by status code; the provider counts 5xx as errors.
    Query.REQUESTS_BY_CODE: "sum by (revision, code) (increase("
    "modeldeploy_inference_requests_total{" + _BOTH + "}[{{interval}}]))",
    Query.LATENCY_BUCKETS: "sum by (revision, le) (increase("
    "modeldeploy_inference_request_duration_seconds_bucket{" + _BOTH + "}[{{interval}}]))",
    Query.PREDICTIONS_BY_CLASS: "sum by (revision, class) (increase("
    "modeldeploy_predictions_total{" + _BOTH + "}[{{interval}}]))",
    Query.SCORE_BUCKETS: "sum by (revision, le) (increase("
    "modeldeploy_prediction_score_bucket{" + _BOTH + "}[{{interval}}]))",
    # The sample count behind a custom check.
    Query.CANARY_REQUESTS: "sum(increase("
    "modeldeploy_inference_requests_total{" + _CANARY + "}[{{interval}}]))",
}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z]+)\s*\}\}")
# Kubernetes names are safe inside a PromQL string; revisions (hashes, no dots)
# also inside the regex that selects both revisions.
_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_REVISION = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


class TemplateError(ValueError):
    """A template or a target that cannot become a query."""


def window(seconds: float) -> str:
    """A PromQL range for the window, in whole seconds (at least one)."""
    return f"{max(1, math.ceil(seconds))}s"


def values(target: AnalysisTarget) -> dict[str, str]:
    """What each placeholder stands for."""
    labels = {
        "namespace": target.namespace,
        "name": target.name,
        "revision": target.revision,
        "stableRevision": target.stable_revision,
    }
    for key, value in labels.items():
        pattern = _REVISION if key in ("revision", "stableRevision") else _NAME
        if not pattern.match(value):
            raise TemplateError(f"{key} {value!r} is not a valid {key}")
    return {**labels, "interval": window(target.window_seconds)}


def render(template: str, target: AnalysisTarget) -> str:
    """Fill ``{{namespace}} {{name}} {{revision}} {{stableRevision}} {{interval}}``."""
    known = values(target)

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in known:
            raise TemplateError(
                f"unknown placeholder {{{{{key}}}}} (known: {', '.join(sorted(known))})"
            )
        return known[key]

    return _PLACEHOLDER.sub(fill, template)


def builtin(query: Query, target: AnalysisTarget) -> str:
    return render(TEMPLATES[query], target)
