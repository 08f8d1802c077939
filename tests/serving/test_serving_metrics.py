"""/metrics carries the fixed series with the label contract, and counts exactly.

The server under test runs two workers, so exact totals also prove that the
multiprocess registry sums what each worker recorded.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from serving_helpers import Server, oip_request

pytestmark = [pytest.mark.serving, pytest.mark.timeout(600)]

LATENCY_BUCKETS = [
    "0.001",
    "0.0025",
    "0.005",
    "0.01",
    "0.025",
    "0.05",
    "0.1",
    "0.25",
    "0.5",
    "1.0",
    "2.5",
    "5.0",
    "10.0",
    "+Inf",
]
SCORE_BUCKETS = ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0", "+Inf"]
TOTAL_REQUESTS = 16  # what the traffic fixture sends to inference endpoints
FORBIDDEN_LABELS = {"namespace", "modeldeployment", "revision", "pod"}
OURS = (
    "modeldeploy_inference_requests",
    "modeldeploy_inference_request_duration_seconds",
    "modeldeploy_predictions",
    "modeldeploy_prediction_score",
)


def _scrape(client: httpx.Client) -> list[Sample]:
    text = client.get("/metrics").text
    return [
        s
        for family in text_string_to_metric_families(text)
        if family.name in OURS
        for s in family.samples
    ]


def _samples(client: httpx.Client) -> list[Sample]:
    """A scrape once every worker has written out its tallies (they flush every 0.25 s)."""
    deadline = time.monotonic() + 10
    while True:
        samples = _scrape(client)
        if _value(samples, "modeldeploy_inference_requests_total") >= TOTAL_REQUESTS:
            return samples
        if time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture(scope="module")
def metrics_client(servers: dict[str, Server]) -> Iterator[httpx.Client]:
    server = servers["metrics"]
    server.wait_ready()
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def traffic(metrics_client: httpx.Client, samples: list[list[float]]) -> Counter[str]:
    """Sends a known mix of requests once; returns the predicted classes the clients saw."""
    seen: Counter[str] = Counter()
    infer = "/v2/models/classifier/infer"
    for i in range(10):  # 10 good single-row infer requests
        body = metrics_client.post(infer, json=oip_request([samples[i]])).json()
        seen.update(str(v) for v in body["outputs"][0]["data"])
    for i in range(3):  # 3 good predict requests of 2 rows each
        rows = samples[20 + 2 * i : 22 + 2 * i]
        body = metrics_client.post("/predict", json={"instances": rows}).json()
        seen.update(str(v) for v in body["predictions"])
    for _ in range(2):  # 2 bad infer requests (422)
        assert metrics_client.post(infer, json=oip_request([[1.0, 2.0]])).status_code == 422
    assert metrics_client.post("/predict", content=b"{").status_code == 400
    # None of these are inference requests; they must not be counted.
    for path in ("/v2/health/ready", "/v2/health/live", "/v2/models/classifier", "/metrics"):
        metrics_client.get(path)
    return seen


def test_request_counter_counts_by_endpoint_and_code(
    metrics_client: httpx.Client, traffic: Counter[str]
) -> None:
    samples = _samples(metrics_client)
    name = "modeldeploy_inference_requests_total"
    assert _value(samples, name, endpoint="infer", code="200") == 10
    assert _value(samples, name, endpoint="infer", code="422") == 2
    assert _value(samples, name, endpoint="predict", code="200") == 3
    assert _value(samples, name, endpoint="predict", code="400") == 1
    assert _value(samples, name) == 16
    assert {s.labels["endpoint"] for s in samples if s.name == name} == {"infer", "predict"}


def test_latency_histogram_has_the_contract_buckets_and_counts(
    metrics_client: httpx.Client, traffic: Counter[str]
) -> None:
    samples = _samples(metrics_client)
    name = "modeldeploy_inference_request_duration_seconds"
    assert _value(samples, f"{name}_count", endpoint="infer") == 12
    assert _value(samples, f"{name}_count", endpoint="predict") == 4
    buckets = [
        s.labels["le"]
        for s in samples
        if s.name == f"{name}_bucket" and s.labels["endpoint"] == "infer"
    ]
    assert buckets == LATENCY_BUCKETS
    assert _value(samples, f"{name}_bucket", endpoint="infer", le="+Inf") == 12
    assert _value(samples, f"{name}_sum", endpoint="infer") > 0


def test_prediction_distribution_matches_what_clients_received(
    metrics_client: httpx.Client, traffic: Counter[str]
) -> None:
    samples = _samples(metrics_client)
    counted = {
        s.labels["class"]: s.value
        for s in samples
        if s.name == "modeldeploy_predictions_total" and s.value > 0
    }
    assert counted == {k: float(v) for k, v in traffic.items()}
    assert sum(counted.values()) == 16  # 10 rows + 3 x 2 rows; refused requests add nothing
    score = "modeldeploy_prediction_score"
    assert _value(samples, f"{score}_count") == 16
    assert [s.labels["le"] for s in samples if s.name == f"{score}_bucket"] == SCORE_BUCKETS
    # Top class probability of 3 classes is at least 1/3: nothing below 0.3.
    assert _value(samples, f"{score}_bucket", le="0.3") == 0
    assert 16 / 3 <= _value(samples, f"{score}_sum") <= 16


def test_every_series_carries_model_labels_and_none_of_the_scrape_labels(
    metrics_client: httpx.Client, traffic: Counter[str]
) -> None:
    samples = _samples(metrics_client)
    assert {
        s.name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for s in samples
    } >= {
        "modeldeploy_inference_requests_total",
        "modeldeploy_inference_request_duration_seconds",
        "modeldeploy_predictions_total",
        "modeldeploy_prediction_score",
    }
    for sample in samples:
        assert sample.labels["model_name"] == "classifier"
        assert sample.labels["model_version"] == "1.0.0"
        assert not FORBIDDEN_LABELS & set(sample.labels), sample
