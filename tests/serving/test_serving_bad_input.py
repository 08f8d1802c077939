"""Every way a request can be wrong gets a 4xx naming the problem, never a 5xx or a crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving_helpers import MAX_BATCH_ROWS, MAX_REQUEST_BYTES, oip_request

pytestmark = [pytest.mark.serving, pytest.mark.timeout(600)]

ROW = [0.1, 0.2, 0.3, 0.4]


def _tensor(**overrides: Any) -> str:
    tensor = {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [ROW]}
    tensor.update(overrides)
    return json.dumps({"inputs": [tensor]})


# (id, path, raw body, expected status, words the error message must contain)
CASES: list[tuple[str, str, str, int, str]] = [
    ("malformed-json", "/v2/models/v1/infer", '{"inputs": [', 400, "malformed JSON"),
    ("not-utf8", "/v2/models/v1/infer", "\udcff", 400, "malformed JSON"),
    ("empty-body", "/v2/models/v1/infer", "", 400, "empty request body"),
    ("not-an-object", "/v2/models/v1/infer", "[1, 2]", 400, "JSON object"),
    ("no-inputs", "/v2/models/v1/infer", '{"outputs": []}', 400, "'inputs'"),
    (
        "missing-datatype",
        "/v2/models/v1/infer",
        json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "data": [ROW]}]}),
        400,
        "datatype",
    ),
    (
        "wrong-input-name",
        "/v2/models/v1/infer",
        _tensor(name="features"),
        422,
        "unknown input 'features'",
    ),
    (
        "wrong-datatype",
        "/v2/models/v1/infer",
        _tensor(datatype="FP64"),
        422,
        "datatype FP64 does not match the model's FP32",
    ),
    (
        "strings-as-numbers",
        "/v2/models/v1/infer",
        _tensor(data=[["a", "b", "c", "d"]]),
        422,
        "expected FP32 values, got strings",
    ),
    ("nulls", "/v2/models/v1/infer", _tensor(data=[[None, 1, 2, 3]]), 422, "expected FP32 values"),
    (
        "wrong-shape",
        "/v2/models/v1/infer",
        _tensor(shape=[1, 3], data=[[1, 2, 3]]),
        422,
        "shape [1, 3] does not match the model's [-1, 4]",
    ),
    (
        "rank-3",
        "/v2/models/v1/infer",
        _tensor(shape=[1, 1, 4], data=[[ROW]]),
        422,
        "does not match the model's [-1, 4]",
    ),
    (
        "shape-disagrees-with-data",
        "/v2/models/v1/infer",
        _tensor(shape=[2, 4]),
        422,
        "data has shape [1, 4] but 'shape' says [2, 4]",
    ),
    (
        "flat-data-too-short",
        "/v2/models/v1/infer",
        _tensor(shape=[2, 4], data=ROW),
        422,
        "4 values cannot fill shape [2, 4]",
    ),
    ("ragged", "/v2/models/v1/infer", _tensor(shape=[2, 4], data=[ROW, [1, 2]]), 422, "ragged"),
    (
        "too-many-rows",
        "/v2/models/v1/infer",
        _tensor(shape=[MAX_BATCH_ROWS + 1, 4], data=[ROW] * (MAX_BATCH_ROWS + 1)),
        413,
        f"{MAX_BATCH_ROWS + 1} rows exceed the limit of {MAX_BATCH_ROWS}",
    ),
    (
        "nan",
        "/v2/models/v1/infer",
        _tensor(data=[[0.1, "NaN", 0.3, 0.4]]).replace('"NaN"', "NaN"),
        422,
        "non-finite value",
    ),
    (
        "infinity",
        "/v2/models/v1/infer",
        _tensor(data=[[0.1, "Inf", 0.3, 0.4]]).replace('"Inf"', "-Infinity"),
        422,
        "non-finite",
    ),
    (
        "beyond-fp32",
        "/v2/models/v1/infer",
        _tensor(data=[[1e39, 0, 0, 0]]),
        422,
        "beyond FP32 range",
    ),
    (
        "unknown-output",
        "/v2/models/v1/infer",
        json.dumps({**json.loads(_tensor()), "outputs": [{"name": "scores"}]}),
        422,
        "unknown output(s) ['scores']",
    ),
    ("other-model", "/v2/models/resnet/infer", _tensor(), 404, "'resnet' is not served here"),
    (
        "predict-wrong-shape",
        "/predict",
        json.dumps({"instances": [[1, 2, 3]]}),
        422,
        "does not match the model's [-1, 4]",
    ),
    (
        "predict-single-row-not-nested",
        "/predict",
        json.dumps({"instances": ROW}),
        422,
        "shape [4] does not match",
    ),
    ("predict-no-instances", "/predict", json.dumps({"rows": [ROW]}), 400, "instances"),
    (
        "predict-unknown-input",
        "/predict",
        json.dumps({"inputs": {"x": [ROW]}}),
        422,
        "unknown input(s) ['x']",
    ),
    ("predict-nan", "/predict", '{"instances": [[NaN, 1, 2, 3]]}', 422, "non-finite"),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_request_is_refused_with_a_clear_4xx(
    client: httpx.Client, path: str, body: str, status: int, words: str
) -> None:
    response = client.post(
        path,
        content=body.encode("utf-8", "surrogateescape"),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    body = _tensor(data=[[0.1] * 4]).encode() + b" " * MAX_REQUEST_BYTES
    response = client.post("/v2/models/v1/infer", content=body)
    assert response.status_code == 413
    assert f"exceeds the limit of {MAX_REQUEST_BYTES} bytes" in response.json()["error"]


def test_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count
        yield _tensor().encode()
        for _ in range(MAX_REQUEST_BYTES // 4096 + 2):
            yield b" " * 4096

    response = client.post("/v2/models/v1/infer", content=chunks())
    assert response.status_code == 413
    assert "exceeds the limit" in response.json()["error"]


def test_wrong_method_is_405(client: httpx.Client) -> None:
    assert client.get("/v2/models/v1/infer").status_code == 405
    assert client.get("/predict").status_code == 405


def test_bad_requests_never_count_as_server_errors(client: httpx.Client) -> None:
    """After all the cases above the server still serves, and no 5xx was recorded."""
    assert client.post("/v2/models/v1/infer", json=oip_request([ROW])).status_code == 200
    text = client.get("/metrics").text
    codes = {
        sample.labels["code"]
        for family in text_string_to_metric_families(text)
        if family.name == "modeldeploy_inference_requests"
        for sample in family.samples
        if sample.value > 0
    }
    assert "200" in codes
    assert not {c for c in codes if c.startswith("5")}, codes
