"""Canary analysis through the real operator, on live data from a real Prometheus.

Each revision's ``/metrics`` is a ``ServingExporter`` (the serving bento's
metric contract) fed with synthetic traffic; Prometheus scrapes them every
second and adds the label contract for the revisions the operator will
create. The operator reads Prometheus exactly as it would in a cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter import ServingExporter
from md_env import (
    Cluster,
    FakeKubelet,
    MetadataServer,
    OperatorProcess,
    model_deployment,
    revision,
    unique_name,
    wait_for,
)
from prometheus_env import PrometheusServer, free_port

CLASSES = ("setosa", "versicolor", "virginica")
IRIS_CONTRACT: dict[str, Any] = {
    "name": "iris",
    "platform": "onnxruntime",
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ],
}

Traffic = Callable[[ServingExporter, ServingExporter], None]


def healthy(stable: ServingExporter, canary: ServingExporter) -> None:
    for exporter in (stable, canary):
        exporter.request(code="200", seconds=0.02, n=3)
        for label in CLASSES:
            exporter.predict(label, score=0.8)


def canary_fails_every_request(stable: ServingExporter, canary: ServingExporter) -> None:
    stable.request(code="200", seconds=0.02, n=3)
    canary.request(code="500", seconds=0.02, n=3)
    for label in CLASSES:
        stable.predict(label, score=0.8)


class Scene:
    """A stable and a canary revision's metrics, scraped by a real Prometheus."""

    def __init__(self, namespace: str, name: str, workdir: Path, traffic: Traffic) -> None:
        self.namespace, self.name = namespace, name
        self.v1 = model_deployment(name, "v1", serving={"replicas": 2})
        self.v2 = model_deployment(name, "v2", serving={"replicas": 2})
        self.stable = ServingExporter(model_version="v1", classes=CLASSES)
        self.canary = ServingExporter(model_version="v2", classes=CLASSES)
        self.stable.start()
        self.canary.start()
        targets = [
            (self.stable.port, self._labels(revision(self.v1))),
            (self.canary.port, self._labels(revision(self.v2))),
        ]
        self.prometheus = PrometheusServer(workdir, targets)
        self._traffic = traffic
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()

    def _labels(self, rev: str) -> dict[str, str]:
        return {"namespace": self.namespace, "modeldeployment": self.name, "revision": rev}

    def _send(self) -> None:
        # About 30 requests a second per revision, bounded by the test's lifetime.
        while not self._stop.wait(0.1):
            self._traffic(self.stable, self.canary)

    def with_rollout(self, body: dict[str, Any], rollout: dict[str, Any]) -> dict[str, Any]:
        body["spec"]["rollout"] = rollout
        return body

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.prometheus.stop()
        self.stable.stop()
        self.canary.stop()


@pytest.fixture
def scene_factory(namespace: str, tmp_path: Path) -> Iterator[Callable[[Traffic], Scene]]:
    scenes: list[Scene] = []

    def make(traffic: Traffic) -> Scene:
        workdir = tmp_path / f"prometheus-{len(scenes)}"
        workdir.mkdir()
        scene = Scene(namespace, unique_name("an"), workdir, traffic)
        scenes.append(scene)
        return scene

    yield make
    for scene in scenes:
        scene.close()


def analysed_rollout(address: str, checks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "steps": [{"setWeight": 50}, {"setWeight": 100}],
        "analysis": {
            "interval": "1s",
            "prometheus": {"address": address, "timeoutSeconds": 2},
            "minSampleSize": 10,
            "checks": checks,
        },
        **extra,
    }


def start_canary(cluster: Cluster, scene: Scene, rollout: dict[str, Any]) -> None:
    cluster.apply(scene.with_rollout(scene.v1, rollout))
    cluster.wait_phase(scene.name, "Succeeded")
    cluster.apply(scene.with_rollout(scene.v2, rollout))


def test_a_canary_failing_every_request_is_rolled_back_with_the_evidence(
    operator: OperatorProcess,
    cluster: Cluster,
    kubelet: FakeKubelet,
    scene_factory: Callable[[Traffic], Scene],
) -> None:
    scene = scene_factory(canary_fails_every_request)
    rollout = analysed_rollout(scene.prometheus.url, [{"name": "error-rate"}])
    start_canary(cluster, scene, rollout)
    status = cluster.wait_phase(scene.name, "RolledBack", timeout=60)

    result = next(r for r in status["analysis"] if r["name"] == "error-rate")
    assert result["verdict"] == "Failure"
    assert result["value"] > 0.9
    assert result["stableValue"] < 0.01
    assert result["samples"] >= 10
    assert "error-rate" in status["message"]
    assert status["canaryWeight"] == 0
    assert cluster.replicas(scene.name) == {revision(scene.v1): 2, revision(scene.v2): 0}
    reasons = cluster.event_reasons(scene.name)
    assert "RollingBack" in reasons
    assert "RolledBack" in reasons


def test_a_healthy_canary_is_promoted_through_analysis_gates(
    operator: OperatorProcess,
    cluster: Cluster,
    kubelet: FakeKubelet,
    scene_factory: Callable[[Traffic], Scene],
    metadata_server: MetadataServer,
) -> None:
    scene = scene_factory(healthy)
    for body in (scene.v1, scene.v2):
        service = f"{scene.name}-{revision(body)}"
        metadata_server.register(scene.namespace, service, IRIS_CONTRACT)
    checks = [
        {"name": "contract"},
        {"name": "error-rate"},
        {"name": "latency"},
        {"name": "prediction-drift"},
    ]
    rollout = analysed_rollout(scene.prometheus.url, checks)
    start_canary(cluster, scene, rollout)
    promoted = revision(scene.v2)
    status = wait_for(
        lambda: (s := cluster.status(scene.name)).get("stableRevision") == promoted and s,
        90,
        "the healthy canary to be promoted",
    )
    assert status["phase"] == "Succeeded"
    assert status["analysisRounds"] >= 2  # one passing round per setWeight step
    assert {r["name"]: r["verdict"] for r in status["analysis"]} == {
        "contract": "Success",
        "error-rate": "Success",
        "latency": "Success",
        "prediction-drift": "Success",
    }


def test_a_broken_model_contract_rolls_back_at_once(
    operator: OperatorProcess,
    cluster: Cluster,
    kubelet: FakeKubelet,
    scene_factory: Callable[[Traffic], Scene],
    metadata_server: MetadataServer,
) -> None:
    scene = scene_factory(healthy)
    broken = {
        **IRIS_CONTRACT,
        "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, 8]}],
    }
    metadata_server.register(scene.namespace, f"{scene.name}-{revision(scene.v1)}", IRIS_CONTRACT)
    metadata_server.register(scene.namespace, f"{scene.name}-{revision(scene.v2)}", broken)
    rollout = analysed_rollout(
        scene.prometheus.url, [{"name": "contract"}, {"name": "error-rate"}], failureLimit=3
    )
    start_canary(cluster, scene, rollout)
    status = cluster.wait_phase(scene.name, "RolledBack", timeout=60)
    contract = next(r for r in status["analysis"] if r["name"] == "contract")
    assert contract["verdict"] == "Failure"
    assert "input" in contract["reason"]
    assert status["analysisRounds"] == 1  # deterministic: no waiting for failureLimit


def test_an_unreachable_prometheus_holds_until_the_progress_deadline(
    operator: OperatorProcess,
    cluster: Cluster,
    kubelet: FakeKubelet,
    scene_factory: Callable[[Traffic], Scene],
) -> None:
    scene = scene_factory(healthy)
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    rollout = analysed_rollout(nowhere, [{"name": "error-rate"}], progressDeadlineSeconds=8)
    start_canary(cluster, scene, rollout)
    held = cluster.wait_phase(scene.name, "Progressing", timeout=30)
    assert held.get("currentStep", 0) == 0
    status = cluster.wait_phase(scene.name, "RolledBack", timeout=60)
    assert "inconclusive" in status["message"]
    result = next(r for r in status["analysis"] if r["name"] == "error-rate")
    assert result["verdict"] == "Inconclusive"
