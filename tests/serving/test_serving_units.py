"""In-process checks of the serving pieces whose edge cases are awkward to reach over HTTP."""

from __future__ import annotations

import hashlib
import http.server
import random
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram

from serving_helpers import MODELS, ROOT

sys.path.insert(0, str(ROOT / "bentos" / "onnx-serving"))
from onnx_serving.fetch import FetchError, fetch_and_verify
from onnx_serving.metrics import LATENCY_BUCKETS, _add_observations
from onnx_serving.settings import SettingsError, load_settings


def _histogram_samples(histogram: Histogram) -> dict[str, float]:
    return {
        f"{s.name}{s.labels.get('le', '')}": s.value
        for metric in histogram.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def test_batched_histogram_writes_equal_one_observe_per_value() -> None:
    rng = random.Random(7)
    values = [
        rng.choice([0.001, 0.01, 10.0, 11.0]) if i % 5 == 0 else rng.expovariate(50)
        for i in range(2000)
    ]
    one_by_one = Histogram("a", "a", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    batched = Histogram("a", "a", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    for value in values:
        one_by_one.observe(value)
    _add_observations(batched, values)
    expected, got = _histogram_samples(one_by_one), _histogram_samples(batched)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "MODEL_URI is not set"),
        ({"MODEL_URI": "file:///m.onnx", "MODEL_SHA256": "abc"}, "not a 64-digit hex sha256"),
        ({"MODEL_URI": "file:///m.onnx", "MAX_BATCH_ROWS": "many"}, "is not an integer"),
        ({"MODEL_URI": "file:///m.onnx", "MAX_REQUEST_BYTES": "0"}, "must be at least 1"),
        ({"MODEL_URI": "file:///m.onnx", "REQUEST_TIMEOUT_SECONDS": "-1"}, "must be positive"),
        ({"MODEL_URI": "file:///m.onnx", "GC_POLICY": "off"}, "must be freeze or default"),
    ],
)
def test_bad_settings_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_settings_defaults() -> None:
    settings = load_settings({"MODEL_URI": "https://models.example/fraud/v3.onnx"})
    assert settings.model_name == "v3"
    assert settings.model_version == "unversioned"
    assert settings.model_sha256 is None
    assert settings.max_request_bytes == 1 << 20
    assert settings.max_batch_rows == 1024
    assert settings.allow_nonfinite_inputs is False
    assert settings.workers >= 1
    assert settings.intra_op_threads >= 1


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first ``failures`` requests, then serves the model bytes."""

    failures = 0
    body = b""
    served = 0

    def do_GET(self) -> None:
        type(self).served += 1
        if type(self).served <= type(self).failures:
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def flaky_server() -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type(
        "Flaky", (_Flaky,), {"failures": 2, "served": 0, "body": (MODELS / "v1.onnx").read_bytes()}
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1.onnx", handler
    server.shutdown()


def test_fetch_retries_transient_errors_then_verifies(
    flaky_server: tuple[str, type[_Flaky]],
) -> None:
    url, handler = flaky_server
    data = (MODELS / "v1.onnx").read_bytes()
    retries: list[str] = []
    fetched = fetch_and_verify(
        url,
        expected_sha256=hashlib.sha256(data).hexdigest(),
        timeout=5,
        max_bytes=1 << 20,
        attempts=5,
        on_retry=retries.append,
        sleep=lambda _: None,
    )
    assert fetched.data == data
    assert fetched.verified
    assert handler.served == 3
    assert len(retries) == 2
    assert "answered 503" in retries[0]


def test_fetch_gives_up_after_the_last_attempt(flaky_server: tuple[str, type[_Flaky]]) -> None:
    url, handler = flaky_server
    with pytest.raises(FetchError, match=r"answered 503 .*\(attempt 2 of 2\)"):
        fetch_and_verify(
            url,
            expected_sha256=None,
            timeout=5,
            max_bytes=1 << 20,
            attempts=2,
            sleep=lambda _: None,
        )
    assert handler.served == 2


def test_fetch_refuses_a_model_over_the_size_limit(
    flaky_server: tuple[str, type[_Flaky]],
) -> None:
    url, handler = flaky_server
    handler.failures = 0
    with pytest.raises(FetchError, match="over MAX_MODEL_BYTES=100"):
        fetch_and_verify(
            url, expected_sha256=None, timeout=5, max_bytes=100, attempts=3, sleep=lambda _: None
        )


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://host/model.onnx", "unsupported scheme 'ftp'"),
        ("file:///no/such/model.onnx", "no such file"),
        ("file://otherhost/model.onnx", "file:///absolute/path"),
    ],
)
def test_fetch_permanent_errors_are_not_retried(uri: str, message: str) -> None:
    retries: list[str] = []
    with pytest.raises(FetchError, match=message):
        fetch_and_verify(
            uri,
            expected_sha256=None,
            timeout=1,
            max_bytes=1 << 20,
            attempts=5,
            on_retry=retries.append,
            sleep=lambda _: None,
        )
    assert retries == []
