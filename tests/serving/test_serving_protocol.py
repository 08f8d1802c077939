"""The Open Inference Protocol surface of a healthy server: health, metadata, inference."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from serving_helpers import MODELS, Server, oip_request

pytestmark = [pytest.mark.serving, pytest.mark.timeout(600)]


def _reference(model_file: str, rows: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(str(MODELS / model_file), providers=["CPUExecutionProvider"])
    label, probabilities = session.run(None, {"input": np.asarray(rows, dtype=np.float32)})
    return label, probabilities


def test_health_endpoints_report_live_and_ready(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").status_code == 200
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "state": "ready",
        "model_name": "v1",
        "model_version": "main-test",
    }
    # BentoML's own probes agree (it asks the service's __is_ready__).
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200
    assert client.get("/v2/models/v1/ready").json() == {"name": "v1", "ready": True}
    assert client.get("/v2").json()["name"] == "modeldeploy-onnx-serving"


def test_metadata_matches_the_model_file(client: httpx.Client, manifest: dict[str, Any]) -> None:
    session = ort.InferenceSession(str(MODELS / "v1.onnx"), providers=["CPUExecutionProvider"])
    body = client.get("/v2/models/v1").json()
    assert body["name"] == "v1"
    assert body["versions"] == ["main-test"]
    assert body["platform"] == "onnxruntime_onnx"
    assert body["inputs"] == [
        {"name": i.name, "datatype": "FP32", "shape": [-1, 4]} for i in session.get_inputs()
    ]
    assert body["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ]
    assert body["parameters"]["sha256"] == manifest["models"]["v1"]["sha256"]
    assert body["parameters"]["sha256_verified"] is True
    assert client.get("/v2/models/v1/versions/main-test").json() == body


@pytest.mark.parametrize(
    ("path", "status"),
    [("/v2/models/other", 404), ("/v2/models/v1/versions/9.9", 404), ("/nowhere", 404)],
)
def test_metadata_for_unknown_models_is_404(client: httpx.Client, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert "error" in response.json()


def test_infer_returns_what_onnxruntime_computes(
    client: httpx.Client, samples: list[list[float]]
) -> None:
    rows = samples[:10]
    response = client.post("/v2/models/v1/infer", json={**oip_request(rows), "id": "req-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "v1"
    assert body["model_version"] == "main-test"
    assert body["id"] == "req-1"
    label, probabilities = _reference("v1.onnx", rows)
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"]["datatype"] == "INT64"
    assert outputs["label"]["shape"] == [10]
    assert outputs["label"]["data"] == label.tolist()
    assert outputs["probabilities"]["shape"] == [10, 3]
    np.testing.assert_allclose(
        outputs["probabilities"]["data"], probabilities.reshape(-1), rtol=1e-6
    )


def test_infer_accepts_flat_row_major_data_and_versioned_path(
    client: httpx.Client, samples: list[list[float]]
) -> None:
    rows = samples[:3]
    request = {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": [3, 4],
                "data": [v for row in rows for v in row],
            }
        ],
        "outputs": [{"name": "label"}],
    }
    response = client.post("/v2/models/v1/versions/main-test/infer", json=request)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert [o["name"] for o in outputs] == ["label"]
    assert outputs[0]["data"] == _reference("v1.onnx", rows)[0].tolist()


def test_predict_returns_labels_and_outputs(
    client: httpx.Client, samples: list[list[float]]
) -> None:
    rows = samples[:5]
    response = client.post("/predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    label, probabilities = _reference("v1.onnx", rows)
    assert body["predictions"] == label.tolist()
    np.testing.assert_allclose(body["outputs"]["probabilities"], probabilities, rtol=1e-6)
    named = client.post("/predict", json={"inputs": {"input": rows}})
    assert named.status_code == 200
    assert named.json()["predictions"] == label.tolist()


def test_v2_keeps_the_contract_and_agrees_with_v1(
    servers: dict[str, Server], client: httpx.Client, samples: list[list[float]]
) -> None:
    v2 = servers["v2"]
    v2.wait_ready()
    with v2.client() as v2_client:
        v2_meta = v2_client.get("/v2/models/v2").json()
        v1_meta = client.get("/v2/models/v1").json()
        assert (v2_meta["inputs"], v2_meta["outputs"]) == (v1_meta["inputs"], v1_meta["outputs"])
        v2_labels = v2_client.post("/predict", json={"instances": samples}).json()["predictions"]
    v1_labels = client.post("/predict", json={"instances": samples[:64]}).json()["predictions"]
    agreement = np.mean(np.asarray(v2_labels[:64]) == np.asarray(v1_labels))
    assert agreement >= 0.9
