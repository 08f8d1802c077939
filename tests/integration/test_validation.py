"""The real API server refuses bad ModelDeployments, naming the field (schema + CEL)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from md_env import GROUP, PLURAL, VERSION, install_crd

VALID: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "ModelDeployment",
    "metadata": {"name": "valid"},
    "spec": {
        "model": {"uri": "https://models.example/v1.onnx", "version": "v1"},
        "serving": {"replicas": 2},
        "rollout": {
            "steps": [{"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 100}],
            "analysis": {"checks": [{"name": "error-rate"}]},
        },
    },
}


@pytest.fixture(scope="module")
def crd(k8s_api: client.ApiClient) -> None:
    install_crd(k8s_api)


def create(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> Any:
    return client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, dry_run="All", field_validation="Strict"
    )


def mutate(path: str, value: Any) -> dict[str, Any]:
    """A copy of VALID with the dotted ``path`` set (or removed when value is DELETE)."""
    body = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    if value is DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return body


DELETE = object()

INVALID = [
    ("missing model uri", "spec.model.uri", DELETE, ["spec.model.uri", "Required"]),
    ("missing model version", "spec.model.version", DELETE, ["spec.model.version"]),
    ("bad uri scheme", "spec.model.uri", "ftp://models/v1.onnx", ["spec.model.uri"]),
    ("sha256 not hex", "spec.model.sha256", "abc123", ["spec.model.sha256"]),
    ("negative replicas", "spec.serving.replicas", -1, ["spec.serving.replicas"]),
    (
        "weights not increasing",
        "spec.rollout.steps",
        [{"setWeight": 50}, {"setWeight": 20}, {"setWeight": 100}],
        ["spec.rollout.steps", "strictly increase"],
    ),
    (
        "weights not ending at 100",
        "spec.rollout.steps",
        [{"setWeight": 10}, {"setWeight": 50}],
        ["spec.rollout.steps", "last setWeight must be 100"],
    ),
    (
        "weight above 100",
        "spec.rollout.steps",
        [{"setWeight": 150}],
        ["spec.rollout.steps[0].setWeight"],
    ),
    (
        "step with both weight and pause",
        "spec.rollout.steps.0",
        {"setWeight": 10, "pause": {}},
        ["spec.rollout.steps[0]", "either setWeight or pause"],
    ),
    ("unknown router type", "spec.rollout.router", {"type": "Istio"}, ["spec.rollout.router.type"]),
    (
        "gateway router without a gateway",
        "spec.rollout.router",
        {"type": "GatewayAPI"},
        ["spec.rollout.router.parentRefs", "parentRef"],
    ),
    (
        "hostname that is not a DNS name",
        "spec.rollout.router",
        {"type": "GatewayAPI", "parentRefs": [{"name": "gw"}], "hostnames": ["Not_A_Host"]},
        ["spec.rollout.router.hostnames[0]"],
    ),
    (
        "zero pause duration",
        "spec.rollout.steps.1",
        {"pause": {"duration": "0s"}},
        ["spec.rollout.steps[1].pause.duration", "positive duration"],
    ),
    (
        "negative pause duration",
        "spec.rollout.steps.1",
        {"pause": {"duration": "-5s"}},
        ["spec.rollout.steps[1].pause.duration"],
    ),
    (
        "unknown check name",
        "spec.rollout.analysis.checks",
        [{"name": "vibes"}],
        ["spec.rollout.analysis.checks[0].name"],
    ),
    (
        "custom check without query",
        "spec.rollout.analysis.checks",
        [{"name": "custom", "alias": "x", "max": 1}],
        ["spec.rollout.analysis.checks[0]", "query"],
    ),
    (
        "duplicate checks",
        "spec.rollout.analysis.checks",
        [{"name": "latency"}, {"name": "latency"}],
        ["spec.rollout.analysis.checks", "distinct"],
    ),
    (
        "zero minimum sample size",
        "spec.rollout.analysis.minSampleSize",
        0,
        ["spec.rollout.analysis.minSampleSize"],
    ),
    (
        "prometheus address not http",
        "spec.rollout.analysis.prometheus",
        {"address": "prometheus:9090"},
        ["spec.rollout.analysis.prometheus.address"],
    ),
    ("interval without unit", "spec.rollout.analysis.interval", "10", ["analysis.interval"]),
    (
        "zero progress deadline",
        "spec.rollout.progressDeadlineSeconds",
        0,
        ["spec.rollout.progressDeadlineSeconds"],
    ),
    ("unknown field", "spec.replicaz", 3, ["unknown field", "spec.replicaz"]),
]


def test_a_valid_object_is_accepted(crd: None, k8s_api: client.ApiClient, namespace: str) -> None:
    created = create(k8s_api, namespace, VALID)
    assert created["spec"]["model"]["version"] == "v1"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_object_is_refused_naming_the_field(
    crd: None,
    k8s_api: client.ApiClient,
    namespace: str,
    path: str,
    value: Any,
    expected: list[str],
) -> None:
    with pytest.raises(ApiException) as refused:
        create(k8s_api, namespace, mutate(path, value))
    assert refused.value.status in (400, 422)
    status = json.loads(refused.value.body)
    causes = (status.get("details") or {}).get("causes") or []
    message = " ".join([status["message"], *(f"{c.get('field')}: {c['message']}" for c in causes)])
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message}"
