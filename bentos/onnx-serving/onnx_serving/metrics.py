"""Prometheus series that canary analysis reads (names and labels are fixed).

Only inference endpoints are counted. Labels carry the model name and
version; ``namespace``, ``modeldeployment``, ``revision`` and ``pod`` are added
by the scrape configuration and must never be set here.

Created inside the worker process, after BentoML has exported
``PROMETHEUS_MULTIPROC_DIR``, so prometheus-client writes to the shared
multiprocess files and every worker's samples are summed on ``/metrics``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
ENDPOINTS = ("infer", "predict")


class Metrics:
    def __init__(self, model_name: str, model_version: str) -> None:
        from prometheus_client import Counter, Histogram  # noqa: PLC0415 - see module doc

        self._labels = (model_name, model_version)
        self.requests = Counter(
            "modeldeploy_inference_requests_total",
            "Inference requests by endpoint and HTTP status code.",
            ["model_name", "model_version", "endpoint", "code"],
        )
        self.duration = Histogram(
            "modeldeploy_inference_request_duration_seconds",
            "Inference request latency inside the server, body read to response built.",
            ["model_name", "model_version", "endpoint"],
            buckets=LATENCY_BUCKETS,
        )
        self.predictions = Counter(
            "modeldeploy_predictions_total",
            "Predicted rows by predicted class.",
            ["model_name", "model_version", "class"],
        )
        self.score = Histogram(
            "modeldeploy_prediction_score",
            "Top score (probability of the predicted class) per predicted row.",
            ["model_name", "model_version"],
            buckets=SCORE_BUCKETS,
        )
        # Label lookups take a lock and build tuples; resolve each child once.
        self._request_children: dict[tuple[str, int], Any] = {}
        self._class_children: dict[str, Any] = {}
        self._duration_children = {e: self.duration.labels(*self._labels, e) for e in ENDPOINTS}
        self._score_child = self.score.labels(*self._labels)
        for endpoint in ENDPOINTS:
            # Present from the first scrape, so rate() over a quiet canary is 0, not absent.
            self._request_child(endpoint, 200)

    def _request_child(self, endpoint: str, code: int) -> Any:
        key = (endpoint, code)
        child = self._request_children.get(key)
        if child is None:
            child = self.requests.labels(*self._labels, endpoint, str(code))
            self._request_children[key] = child
        return child

    def observe_request(self, endpoint: str, code: int, seconds: float) -> None:
        self._request_child(endpoint, code).inc()
        self._duration_children[endpoint].observe(seconds)

    def observe_predictions(self, labels: Sequence[Any], scores: np.ndarray | None) -> None:
        if len(labels) == 1:
            self._class_child(str(labels[0])).inc()
        else:
            values, counts = np.unique(np.asarray([str(v) for v in labels]), return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                self._class_child(value).inc(count)
        if scores is not None:
            for score in scores.tolist():
                self._score_child.observe(score)

    def _class_child(self, label: str) -> Any:
        child = self._class_children.get(label)
        if child is None:
            child = self.predictions.labels(*self._labels, label)
            self._class_children[label] = child
        return child


def render_latest() -> tuple[bytes, str]:
    """The exposition text, summed over worker processes when in multiprocess mode."""
    from prometheus_client import (  # noqa: PLC0415
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        generate_latest,
    )

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client.multiprocess import MultiProcessCollector  # noqa: PLC0415

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
