"""A stand-in for one serving revision's ``/metrics``, for tests with a real Prometheus.

It exports the serving bento's metric contract with prometheus-client on a
free loopback port: request counts by endpoint and status code, the request
duration histogram, predicted-class counts and the prediction-score
histogram. The ``namespace``, ``modeldeployment`` and ``revision`` labels are
not exported here: as in a cluster, Prometheus adds them from its scrape
configuration. Tests record traffic with ``request`` and ``predict``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
ENDPOINTS = ("infer", "predict")
CODES = ("200", "400", "500")


class ServingExporter:
    """One revision's metrics, served until ``stop``."""

    def __init__(
        self,
        model_name: str = "iris",
        model_version: str = "v1",
        classes: Sequence[str] = ("setosa", "versicolor", "virginica"),
    ) -> None:
        self.model = {"model_name": model_name, "model_version": model_version}
        self.registry = CollectorRegistry()
        model_labels = ["model_name", "model_version"]
        self.requests = Counter(
            "modeldeploy_inference_requests",
            "Inference requests by endpoint and status code.",
            [*model_labels, "endpoint", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "modeldeploy_inference_request_duration_seconds",
            "Inference request duration.",
            [*model_labels, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "modeldeploy_predictions",
            "Predicted rows by class.",
            [*model_labels, "class"],
            registry=self.registry,
        )
        self.score = Histogram(
            "modeldeploy_prediction_score",
            "Prediction score (top-class probability).",
            model_labels,
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        # Series exist at zero from the first scrape, as the bento does, so
        # increase() sees the very first request of each kind.
        for endpoint in ENDPOINTS:
            self.duration.labels(**self.model, endpoint=endpoint)
            for code in CODES:
                self.requests.labels(**self.model, endpoint=endpoint, code=code)
        for label in classes:
            self.predictions.labels(**self.model, **{"class": label})
        self.score.labels(**self.model)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> int:
        self._server, self._thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port = self._server.server_port
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def request(
        self, *, code: str = "200", endpoint: str = "infer", seconds: float = 0.01, n: int = 1
    ) -> None:
        self.requests.labels(**self.model, endpoint=endpoint, code=code).inc(n)
        observe = self.duration.labels(**self.model, endpoint=endpoint).observe
        for _ in range(n):
            observe(seconds)

    def predict(self, label: str | None, *, score: float = 0.9, n: int = 1) -> None:
        if label is not None:
            self.predictions.labels(**self.model, **{"class": label}).inc(n)
        observe = self.score.labels(**self.model).observe
        for _ in range(n):
            observe(score)
