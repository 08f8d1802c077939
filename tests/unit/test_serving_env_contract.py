"""The operator's pod environment is exactly what the onnx-serving bento reads."""

from __future__ import annotations

import sys
from pathlib import Path

from modeldeploy.core.api import ModelDeploymentSpec
from modeldeploy.core.children import Owner, deployment

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bentos/onnx-serving"))
from onnx_serving.settings import load_settings


def test_every_serving_setting_reaches_the_bento() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {
                "uri": "https://models.example/iris-v7.onnx",
                "sha256": "a" * 64,
                "version": "v7",
                "name": "iris",
            },
            "serving": {"maxRequestBytes": 4096, "maxBatchRows": 64, "requestTimeoutSeconds": 3},
        }
    )
    manifest = deployment(Owner("ns", "md", "uid-1"), spec, "abc", 2, "stable")
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    settings = load_settings(env)
    assert settings.model_uri == spec.model.uri
    assert settings.model_sha256 == spec.model.sha256
    assert settings.model_name == "iris"
    assert settings.model_version == "v7"
    assert settings.max_request_bytes == 4096
    assert settings.max_batch_rows == 64
    assert settings.request_timeout_seconds == 3
    probe_paths = {
        container["readinessProbe"]["httpGet"]["path"],
        container["livenessProbe"]["httpGet"]["path"],
    }
    assert probe_paths == {"/v2/health/ready", "/v2/health/live"}
