"""The faulty sample models behave as the canary tests need, and bad models never serve."""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving_helpers import Server, oip_request

pytestmark = [pytest.mark.serving, pytest.mark.timeout(600)]


def _labels(server: Server, rows: list[list[float]]) -> np.ndarray:
    with server.client() as client:
        response = client.post("/predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["predictions"])


def _shares(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=3) / len(labels)


def _metadata(server: Server, name: str) -> dict[str, Any]:
    with server.client() as client:
        body: dict[str, Any] = client.get(f"/v2/models/{name}").json()
    return body


def _median_latency(server: Server, path: str, row: list[float], n: int = 25) -> float:
    timings = []
    with server.client() as client:
        client.post(path, json=oip_request([row]))  # warm the connection
        for _ in range(n):
            start = time.perf_counter()
            assert client.post(path, json=oip_request([row])).status_code == 200
            timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def test_drift_model_keeps_the_contract_but_shifts_the_distribution(
    servers: dict[str, Server], main_server: Server, samples: list[list[float]]
) -> None:
    drift = servers["drift"]
    drift.wait_ready()
    drift_meta, v1_meta = _metadata(drift, "drift"), _metadata(main_server, "v1")
    assert (drift_meta["inputs"], drift_meta["outputs"]) == (v1_meta["inputs"], v1_meta["outputs"])
    rows = samples[:64]  # the main server's MAX_BATCH_ROWS
    distance = 0.5 * np.abs(_shares(_labels(drift, rows)) - _shares(_labels(main_server, rows)))
    assert distance.sum() > 0.25  # total variation distance between class shares


def test_slow_model_is_slower_with_the_same_answers(
    servers: dict[str, Server], main_server: Server, samples: list[list[float]]
) -> None:
    slow = servers["slow"]
    slow.wait_ready()
    rows = samples[:32]
    assert _labels(slow, rows).tolist() == _labels(main_server, rows).tolist()
    # Relative, generous: the slow model does tens of milliseconds of extra work.
    slow_latency = _median_latency(slow, "/v2/models/slow/infer", samples[0])
    v1_latency = _median_latency(main_server, "/v2/models/v1/infer", samples[0])
    assert slow_latency > 3 * v1_latency, (slow_latency, v1_latency)


def test_nonfinite_model_fails_some_rows_with_a_counted_500(
    servers: dict[str, Server], samples: list[list[float]]
) -> None:
    server = servers["nonfinite"]
    server.wait_ready()
    codes = []
    with server.client() as client:
        for row in samples[:80]:
            response = client.post("/v2/models/nonfinite/infer", json=oip_request([row]))
            codes.append(response.status_code)
            if response.status_code == 500:
                assert (
                    "non-finite values (NaN or Inf) in output 'probabilities'"
                    in response.json()["error"]
                )
            else:
                assert response.status_code == 200, response.text
        failed = codes.count(500)
        assert 0 < failed < len(codes)
        assert client.get("/v2/health/ready").status_code == 200  # still serving
        text = client.get("/metrics").text
    counted = {
        s.labels["code"]: s.value
        for f in text_string_to_metric_families(text)
        if f.name == "modeldeploy_inference_requests"
        for s in f.samples
        if s.labels["endpoint"] == "infer"
    }
    assert counted.get("500") == failed
    assert counted.get("200") == len(codes) - failed


def test_contract_break_model_exposes_its_different_contract(
    servers: dict[str, Server], samples: list[list[float]]
) -> None:
    server = servers["contract-break"]
    server.wait_ready()
    meta = _metadata(server, "contract-break")
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 6]}]
    with server.client() as client:
        response = client.post("/v2/models/contract-break/infer", json=oip_request(samples[:1]))
    assert response.status_code == 422
    assert "unknown input 'input'" in response.json()["error"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("corrupt", "model rejected: not a valid ONNX file"),
        ("wrong-sha", "sha256 mismatch"),
        ("http-missing", "answered 404"),
        ("bad-config", "configuration error: MAX_BATCH_ROWS='many' is not an integer"),
    ],
)
def test_server_that_cannot_serve_never_becomes_ready(
    servers: dict[str, Server], name: str, reason: str
) -> None:
    server = servers[name]
    first = server.wait_settled()
    with server.client() as client:
        for _ in range(3):  # and it stays that way
            response = client.get("/v2/health/ready")
            assert response.status_code == 503
            body = response.json()
            assert body["ready"] is False
            assert body["state"] == "failed"
            assert reason in body["reason"], body
            time.sleep(0.5)
        assert first.json() == body
        assert client.get("/v2/health/live").status_code == 200  # alive, so it can explain
        assert client.get("/readyz").status_code == 503  # BentoML's probe agrees
        refused = client.post(f"/v2/models/{name}/infer", json=oip_request([[0.0] * 4]))
        assert refused.status_code == 503
        assert reason in refused.json()["error"]
    assert reason in server.log.read_text()  # the reason is in the log too


def test_model_fetched_over_http_is_verified_and_served(
    servers: dict[str, Server], samples: list[list[float]]
) -> None:
    server = servers["http"]
    server.wait_ready()
    meta = _metadata(server, "http")
    assert meta["parameters"]["sha256_verified"] is True
    with server.client() as client:
        response = client.post("/v2/models/http/infer", json=oip_request(samples[:2]))
    assert response.status_code == 200, response.text


def test_nothing_here_crashed(servers: dict[str, Server]) -> None:
    for server in servers.values():
        assert server.process.poll() is None, f"{server.name} exited:\n{server.log_tail()}"
        assert httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200
