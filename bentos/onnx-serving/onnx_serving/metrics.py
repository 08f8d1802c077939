"""Prometheus series that canary analysis reads (names and labels are fixed).

Only inference endpoints are counted. Labels carry the model name and
version; ``namespace``, ``modeldeployment``, ``revision`` and ``pod`` are added
by the scrape configuration and must never be set here.

Created inside the worker process, after BentoML has exported
``PROMETHEUS_MULTIPROC_DIR``, so prometheus-client writes to the shared
multiprocess files and every worker's samples are summed on ``/metrics``.

Requests are tallied in plain dictionaries on the event loop and written to
the prometheus-client values at most every ``FLUSH_SECONDS`` (and before this
worker renders ``/metrics``). In multiprocess mode each value update takes a
lock, checks the pid and packs into a memory map; profiling showed six of
those per request cost more than parsing the request. Series therefore lag
by at most a fraction of a second, far below any scrape interval.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
ENDPOINTS = ("infer", "predict")
FLUSH_SECONDS = 0.25


def _add_observations(child: Any, values: list[float]) -> None:
    """``child.observe(v)`` for every value, with one update per bucket instead of per value."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None:  # internals moved: the slow way
        for value in values:
            child.observe(value)
        return
    # prometheus-client stores non-cumulative counts: value v goes to the first
    # bucket whose upper bound is >= v, exactly as Histogram.observe does.
    counts = np.bincount([bisect.bisect_left(bounds, v) for v in values], minlength=len(bounds))
    for index, count in enumerate(counts.tolist()):
        if count:
            buckets[index].inc(count)
    total.inc(float(sum(values)))


class Metrics:
    def __init__(self, model_name: str, model_version: str) -> None:
        from prometheus_client import Counter, Histogram  # noqa: PLC0415 - see module doc

        labels = (model_name, model_version)
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
        self._labels = labels
        self._duration_children = {e: self.duration.labels(*labels, e) for e in ENDPOINTS}
        self._score_child = self.score.labels(*labels)
        for endpoint in ENDPOINTS:
            # Present from the first scrape, so rate() over a quiet canary is 0, not absent.
            self.requests.labels(*labels, endpoint, "200")
        self._requests: dict[tuple[str, int], int] = {}
        self._latencies: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
        self._classes: dict[str, int] = {}
        self._scores: list[float] = []
        self._flush_scheduled = False

    def observe_request(self, endpoint: str, code: int, seconds: float) -> None:
        key = (endpoint, code)
        self._requests[key] = self._requests.get(key, 0) + 1
        self._latencies[endpoint].append(seconds)
        self._schedule_flush()

    def observe_predictions(self, labels: Sequence[Any], scores: np.ndarray | None) -> None:
        classes = self._classes
        for label in labels:
            key = str(label)
            classes[key] = classes.get(key, 0) + 1
        if scores is not None:
            self._scores.extend(scores.tolist())

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Writes the tallies to prometheus-client; runs on the event loop."""
        self._flush_scheduled = False
        requests, self._requests = self._requests, {}
        for (endpoint, code), count in requests.items():
            self.requests.labels(*self._labels, endpoint, str(code)).inc(count)
        for endpoint, values in self._latencies.items():
            if values:
                self._latencies[endpoint] = []
                _add_observations(self._duration_children[endpoint], values)
        classes, self._classes = self._classes, {}
        for label, count in classes.items():
            self.predictions.labels(*self._labels, label).inc(count)
        if self._scores:
            scores, self._scores = self._scores, []
            _add_observations(self._score_child, scores)


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
