"""The real operator, under its own ServiceAccount, against the local kube-apiserver."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from md_env import (
    GROUP,
    PLURAL,
    RBAC_RULES_FILE,
    VERSION,
    Cluster,
    FakeKubelet,
    OperatorProcess,
    kubectl_modeldeploy,
    model_deployment,
    require_tool,
    revision,
    unique_name,
    wait_for,
)

STEPS = [
    {"setWeight": 25},
    {"pause": {"duration": "2s"}},
    {"setWeight": 50},
    {"pause": {}},
    {"setWeight": 100},
]


def deploy_stable(cluster: Cluster, name: str, **spec: Any) -> dict[str, Any]:
    body = model_deployment(name, "v1", serving={"replicas": 4}, rollout={"steps": STEPS}, **spec)
    cluster.apply(body)
    cluster.wait_phase(name, "Succeeded")
    return body


# --- tests ----------------------------------------------------------------------------


def test_first_revision_gets_owned_labelled_children(
    operator: OperatorProcess, cluster: Cluster, kubelet: FakeKubelet, kubeconfig: Path
) -> None:
    name = unique_name()
    body = deploy_stable(cluster, name)
    rev = revision(body)
    md = cluster.get(name)
    status = md["status"]
    assert status["stableRevision"] == rev
    assert status["stableVersion"] == "v1"
    assert status["observedGeneration"] == md["metadata"]["generation"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"

    dep = cluster.deployment(f"{name}-{rev}")
    labels = dep.metadata.labels
    assert labels["app.kubernetes.io/name"] == name
    assert labels["modeldeploy.dev/revision"] == rev
    assert labels["modeldeploy.dev/track"] == "stable"
    assert "modeldeploy.dev/track" not in dep.spec.template.metadata.labels
    owner = dep.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "ModelDeployment",
        name,
        md["metadata"]["uid"],
        True,
    )
    for service_name in (name, f"{name}-{rev}"):
        svc = cluster.core.read_namespaced_service(service_name, cluster.ns)
        assert svc.metadata.owner_references[0].uid == md["metadata"]["uid"]
    user_svc = cluster.core.read_namespaced_service(name, cluster.ns)
    assert user_svc.spec.selector["app.kubernetes.io/name"] == name
    assert "modeldeploy.dev/revision" not in user_svc.spec.selector  # Replicas router
    assert "Available" in cluster.event_reasons(name)
    # The operator wrote nothing into the object but status: no finalizers, no annotations.
    assert not md["metadata"].get("finalizers")
    assert not any(k.startswith("kopf") for k in md["metadata"].get("annotations") or {})

    kubectl = require_tool("kubectl", "run `make k8s-build`")
    table = subprocess.run(
        [kubectl, "get", "mdep", name, "-n", cluster.ns],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert table.split("\n")[0].split() == ["NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "AGE"]
    assert "Succeeded" in table


def test_model_change_walks_steps_pauses_and_promotes(
    operator: OperatorProcess, cluster: Cluster, kubelet: FakeKubelet, kubeconfig: Path
) -> None:
    name = unique_name()
    body = deploy_stable(cluster, name)
    stable = revision(body)
    v2 = model_deployment(name, "v2", serving={"replicas": 4}, rollout={"steps": STEPS})
    canary = revision(v2)
    cluster.apply(v2)

    seen: list[tuple[int, int, dict[str, int]]] = []

    def at_manual_pause() -> bool:
        status = cluster.status(name)
        point = (
            status.get("currentStep", 0),
            status.get("canaryWeight", 0),
            cluster.replicas(name),
        )
        if not seen or seen[-1] != point:
            seen.append(point)
        return status.get("phase") == "Paused"

    wait_for(at_manual_pause, 60, "the rollout to reach the manual pause")
    weights = [w for _, w, _ in seen]
    assert 25 in weights
    assert weights[-1] == 50
    assert weights == sorted(weights)  # traffic only ever moved forward
    assert any(w == 25 and r == {stable: 3, canary: 1} for _, w, r in seen)
    assert cluster.replicas(name) == {stable: 2, canary: 2}
    status = cluster.status(name)
    assert status["currentStep"] == 3
    assert status["canaryRevision"] == canary
    canary_pods = cluster.pod_uids(canary)
    assert cluster.deployment(f"{name}-{canary}").metadata.labels["modeldeploy.dev/track"] == (
        "canary"
    )

    result = kubectl_modeldeploy(kubeconfig, "promote", name, "-n", cluster.ns)
    assert result.returncode == 0, result.stderr
    final = cluster.wait_phase(name, "Succeeded")
    assert final["stableRevision"] == canary
    assert final["stableVersion"] == "v2"
    assert "canaryRevision" not in final or final["canaryRevision"] is None
    wait_for(lambda: cluster.replicas(name) == {canary: 4}, 30, "the old revision to be retired")
    promoted = cluster.deployment(f"{name}-{canary}")
    assert promoted.metadata.labels["modeldeploy.dev/track"] == "stable"
    assert canary_pods <= cluster.pod_uids(canary), "promotion must not restart canary pods"
    reasons = cluster.event_reasons(name)
    for reason in ("CanaryStarted", "StepCompleted", "Promoting", "Promoted"):
        assert reason in reasons


def test_spec_change_mid_rollout_supersedes_the_canary(
    operator: OperatorProcess, cluster: Cluster, kubelet: FakeKubelet
) -> None:
    name = unique_name()
    stable = revision(deploy_stable(cluster, name))
    v2 = model_deployment(name, "v2", serving={"replicas": 4}, rollout={"steps": STEPS})
    cluster.apply(v2)
    cluster.wait_phase(name, "Paused")
    v3 = model_deployment(name, "v3", serving={"replicas": 4}, rollout={"steps": STEPS})
    cluster.apply(v3)
    wait_for(
        lambda: cluster.status(name).get("canaryRevision") == revision(v3),
        30,
        "the v3 canary to replace v2",
    )
    wait_for(lambda: revision(v2) not in cluster.replicas(name), 30, "the superseded canary to go")
    status = cluster.status(name)
    assert status["stableRevision"] == stable
    assert "Superseded" in cluster.event_reasons(name)


def test_reapplying_stable_is_an_instant_rollback(
    operator: OperatorProcess, cluster: Cluster, kubelet: FakeKubelet
) -> None:
    name = unique_name()
    v1 = deploy_stable(cluster, name)
    stable = revision(v1)
    v2 = model_deployment(name, "v2", serving={"replicas": 4}, rollout={"steps": STEPS})
    cluster.apply(v2)
    cluster.wait_phase(name, "Paused")
    cluster.apply(v1)
    status = cluster.wait_phase(name, "Succeeded")
    assert status["stableRevision"] == stable
    wait_for(lambda: cluster.replicas(name) == {stable: 4}, 30, "stable back at full size alone")
    assert "CanaryAbandoned" in cluster.event_reasons(name)


def test_abort_rolls_back_and_holds(
    operator: OperatorProcess, cluster: Cluster, kubelet: FakeKubelet, kubeconfig: Path
) -> None:
    name = unique_name()
    stable = revision(deploy_stable(cluster, name))
    v2 = model_deployment(name, "v2", serving={"replicas": 4}, rollout={"steps": STEPS})
    cluster.apply(v2)
    cluster.wait_phase(name, "Paused")
    result = kubectl_modeldeploy(kubeconfig, "abort", name, "-n", cluster.ns)
    assert result.returncode == 0, result.stderr
    status = cluster.wait_phase(name, "RolledBack")
    assert status["canaryWeight"] == 0
    assert "aborted" in status["message"]
    assert cluster.replicas(name) == {stable: 4, revision(v2): 0}
    degraded = {c["type"]: c["status"] for c in status["conditions"]}["Degraded"]
    assert degraded == "True"


def test_plugin_refuses_promote_without_a_canary(
    operator: OperatorProcess, cluster: Cluster, kubelet: FakeKubelet, kubeconfig: Path
) -> None:
    name = unique_name()
    deploy_stable(cluster, name)
    result = kubectl_modeldeploy(kubeconfig, "promote", name, "-n", cluster.ns)
    assert result.returncode == 1
    assert "no canary in progress" in result.stderr
    missing = kubectl_modeldeploy(kubeconfig, "promote", "nope", "-n", cluster.ns)
    assert missing.returncode == 1
    assert "not found" in missing.stderr


def test_unavailable_canary_rolls_back_at_the_progress_deadline(
    operator: OperatorProcess, cluster: Cluster, kubelet: FakeKubelet
) -> None:
    name = unique_name()
    rollout = {"steps": STEPS, "progressDeadlineSeconds": 4}
    v1 = model_deployment(name, "v1", serving={"replicas": 2}, rollout=rollout)
    cluster.apply(v1)
    cluster.wait_phase(name, "Succeeded")
    v2 = model_deployment(name, "v2", serving={"replicas": 2}, rollout=rollout)
    kubelet.hold.add(revision(v2))
    cluster.apply(v2)
    status = cluster.wait_phase(name, "RolledBack", timeout=30)
    assert "not available" in status["message"]


def test_deleting_the_modeldeployment_collects_every_child(
    operator: OperatorProcess, cluster: Cluster, kubelet: FakeKubelet
) -> None:
    name = unique_name()
    deploy_stable(cluster, name)
    v2 = model_deployment(name, "v2", serving={"replicas": 4}, rollout={"steps": STEPS})
    cluster.apply(v2)
    cluster.wait_phase(name, "Paused")
    assert len(cluster.replicas(name)) == 2
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, cluster.ns, PLURAL, name)

    def all_gone() -> bool:
        selector = f"app.kubernetes.io/name={name}"
        deployments = cluster.apps.list_namespaced_deployment(cluster.ns, label_selector=selector)
        services = cluster.core.list_namespaced_service(cluster.ns, label_selector=selector)
        return not deployments.items and not services.items

    wait_for(all_gone, 60, "the garbage collector to remove every child")


def test_a_restarted_operator_resumes_without_repeating_or_skipping(
    operator: OperatorProcess, cluster: Cluster, kubelet: FakeKubelet, kubeconfig: Path
) -> None:
    name = unique_name()
    stable = revision(deploy_stable(cluster, name))
    steps = [
        {"setWeight": 25},
        {"pause": {}},
        {"pause": {"duration": "3s"}},
        {"setWeight": 50},
        {"pause": {}},
        {"setWeight": 100},
    ]
    v2 = model_deployment(name, "v2", serving={"replicas": 4}, rollout={"steps": steps})
    canary = revision(v2)
    cluster.apply(v2)
    before = cluster.wait_phase(name, "Paused")
    assert before["currentStep"] == 1

    operator.stop()
    kubectl_modeldeploy(kubeconfig, "promote", name, "-n", cluster.ns)  # acted on by the next one
    operator.start()
    # The new operator continues from step 1: the timed pause (step 2), then weight 50.
    after = wait_for(
        lambda: (s := cluster.status(name)).get("currentStep") == 4 and s,
        60,
        "the new operator to walk on to the second manual pause",
    )
    assert after["phase"] == "Paused"
    assert after["canaryWeight"] == 50
    assert after["rolloutStartedAt"] == before["rolloutStartedAt"]  # the same rollout
    assert cluster.replicas(name) == {stable: 2, canary: 2}
    reasons = cluster.event_reasons(name)
    assert reasons.count("CanaryStarted") == 1  # nothing was started over

    operator.stop()
    operator.start()
    again = cluster.status(name)
    assert (again["currentStep"], again["phase"]) == (4, "Paused")
    kubectl_modeldeploy(kubeconfig, "promote", name, "-n", cluster.ns)
    assert cluster.wait_phase(name, "Succeeded")["stableRevision"] == canary


def test_operator_runs_with_least_privilege(operator: OperatorProcess) -> None:
    rules = yaml.safe_load(RBAC_RULES_FILE.read_text())
    for rule in rules:
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
        assert "secrets" not in rule["resources"]
    api = config.new_client_from_config(str(operator.kubeconfig))
    review = client.AuthenticationV1Api(api).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    assert review.status.user_info.username == (
        "system:serviceaccount:modeldeploy-system:modeldeploy-operator"
    )
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(api).list_secret_for_all_namespaces()
    assert refused.value.status == 403
