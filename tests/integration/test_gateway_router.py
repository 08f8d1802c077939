"""The GatewayAPI router through the real operator, with the real HTTPRoute CRD.

There is no Gateway implementation here: the API server stores and validates
the HTTPRoute the operator writes, and the tests read its backendRefs, which
any implementation would apply. The last test removes the CRD for a while
and puts it back (the operator fixture is shared by the whole session).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gateway_env import (
    backends,
    delete_httproute_crd,
    install_httproute_crd,
    read_route,
    route_writes,
)
from md_env import (
    Cluster,
    FakeKubelet,
    OperatorProcess,
    kubectl_modeldeploy,
    model_deployment,
    revision,
    unique_name,
    wait_for,
)

ROUTER = {"type": "GatewayAPI", "parentRefs": [{"name": "gw"}], "hostnames": ["iris.example"]}
STEPS = [
    {"setWeight": 25},
    {"pause": {"duration": "2s"}},
    {"setWeight": 50},
    {"pause": {}},
    {"setWeight": 100},
]
MISSING_CRD = "GatewayAPI router: the HTTPRoute CRD (gateway.networking.k8s.io/v1) is not installed"


@pytest.fixture(scope="module")
def httproute_crd(k8s_api: client.ApiClient) -> None:
    install_httproute_crd(k8s_api)


def gateway_md(name: str, version: str, router: dict[str, Any] | None = None) -> dict[str, Any]:
    rollout = {"steps": STEPS, "router": router or ROUTER}
    return model_deployment(name, version, serving={"replicas": 4}, rollout=rollout)


def route_of(cluster: Cluster, name: str) -> dict[str, Any] | None:
    return read_route(cluster.core.api_client, cluster.ns, name)


def weights(cluster: Cluster, name: str) -> dict[str, int]:
    """Revision -> weight, as the HTTPRoute says."""
    return {svc.removeprefix(f"{name}-"): w for svc, w in backends(route_of(cluster, name)).items()}


def service_selector(cluster: Cluster, name: str) -> dict[str, str]:
    return dict(cluster.core.read_namespaced_service(name, cluster.ns).spec.selector)


def deploy_stable(cluster: Cluster, name: str) -> str:
    body = gateway_md(name, "v1")
    cluster.apply(body)
    cluster.wait_phase(name, "Succeeded")
    return revision(body)


def start_canary(cluster: Cluster, name: str) -> tuple[str, str]:
    """A stable v1, then v2 applied: returns (stable, canary) revisions."""
    stable = deploy_stable(cluster, name)
    v2 = gateway_md(name, "v2")
    cluster.apply(v2)
    return stable, revision(v2)


def exists(read: Any, name: str, namespace: str) -> bool:
    try:
        read(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


# --- tests ----------------------------------------------------------------------------


def test_the_first_revision_gets_an_owned_route_with_all_traffic(
    operator: OperatorProcess, httproute_crd: None, cluster: Cluster, kubelet: FakeKubelet
) -> None:
    name = unique_name()
    stable = deploy_stable(cluster, name)
    md = cluster.get(name)
    route = wait_for(lambda: route_of(cluster, name), 30, f"HTTPRoute {name}")

    owner = route["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "ModelDeployment",
        name,
        md["metadata"]["uid"],
        True,
    )
    assert route["metadata"]["labels"] == {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/managed-by": "modeldeploy",
    }
    assert [ref["name"] for ref in route["spec"]["parentRefs"]] == ["gw"]
    assert route["spec"]["hostnames"] == ["iris.example"]
    assert len(route["spec"]["rules"]) == 1
    assert route["spec"]["rules"][0]["backendRefs"] == [
        # group and kind are the API server's defaults
        {"group": "", "kind": "Service", "name": f"{name}-{stable}", "port": 80, "weight": 100}
    ]
    selector = service_selector(cluster, name)
    assert selector["modeldeploy.dev/revision"] == stable
    assert selector["app.kubernetes.io/name"] == name


def test_the_route_follows_the_router_spec_and_is_written_only_on_change(
    operator: OperatorProcess,
    httproute_crd: None,
    cluster: Cluster,
    kubelet: FakeKubelet,
    kubeconfig: Path,
) -> None:
    name = unique_name()
    deploy_stable(cluster, name)
    wait_for(lambda: route_of(cluster, name), 30, f"HTTPRoute {name}")
    # The router is not part of the revision: no canary, the route is patched in place.
    changed = {**ROUTER, "hostnames": ["iris.example", "models.example"]}
    cluster.apply(gateway_md(name, "v1", changed))
    wait_for(
        lambda: (r := route_of(cluster, name)) and len(r["spec"]["hostnames"]) == 2,
        30,
        "the route to get the new hostnames",
    )
    assert cluster.status(name).get("canaryRevision") is None
    writes = route_writes(kubeconfig)

    for poke in ("1", "2"):
        # Make the operator tick: a tick re-creates the user Service, then sets weights.
        cluster.core.delete_namespaced_service(name, cluster.ns)
        cluster.custom.patch_namespaced_custom_object(
            "modeldeploy.dev",
            "v1alpha1",
            cluster.ns,
            "modeldeployments",
            name,
            {"metadata": {"annotations": {"test.modeldeploy.dev/poke": poke}}},
        )
        wait_for(
            lambda: exists(cluster.core.read_namespaced_service, name, cluster.ns),
            30,
            "a tick to re-create the user Service",
        )
    assert route_writes(kubeconfig) == writes, "the operator wrote an unchanged HTTPRoute"


def test_weights_follow_the_steps_with_both_revisions_at_full_size_then_promote(
    operator: OperatorProcess,
    httproute_crd: None,
    cluster: Cluster,
    kubelet: FakeKubelet,
    kubeconfig: Path,
) -> None:
    name = unique_name()
    stable, canary = start_canary(cluster, name)

    seen: list[dict[str, int]] = []
    sizes: list[dict[str, int]] = []

    def at_manual_pause() -> bool:
        phase = cluster.status(name).get("phase")
        now = weights(cluster, name)
        if not seen or seen[-1] != now:
            seen.append(now)
        if canary in (replicas := cluster.replicas(name)):
            sizes.append(replicas)
        return phase == "Paused"

    wait_for(at_manual_pause, 60, "the rollout to reach the manual pause")
    assert {stable: 75, canary: 25} in seen, seen
    assert seen[-1] == {stable: 50, canary: 50}, seen
    canary_weights = [w.get(canary, 0) for w in seen]
    assert canary_weights == sorted(canary_weights), f"traffic moved backwards: {seen}"
    assert all(w.keys() <= {stable, canary} and sum(w.values()) == 100 for w in seen), seen
    assert sizes, "the canary Deployment never showed up"
    assert all(size == {stable: 4, canary: 4} for size in sizes), sizes
    # Clients of the user Service bypass the gateway: they stay on stable.
    assert service_selector(cluster, name)["modeldeploy.dev/revision"] == stable

    promoted = kubectl_modeldeploy(kubeconfig, "promote", name, "-n", cluster.ns)
    assert promoted.returncode == 0, promoted.stderr
    final = cluster.wait_phase(name, "Succeeded")
    assert final["stableRevision"] == canary
    wait_for(
        lambda: backends(route_of(cluster, name)) == {f"{name}-{canary}": 100},
        30,
        "one backendRef, the new revision at 100",
    )
    wait_for(
        lambda: (
            not exists(cluster.core.read_namespaced_service, f"{name}-{stable}", cluster.ns)
            and not exists(cluster.apps.read_namespaced_deployment, f"{name}-{stable}", cluster.ns)
        ),
        30,
        "the old revision's Service and Deployment to be deleted",
    )
    assert cluster.replicas(name) == {canary: 4}
    assert service_selector(cluster, name)["modeldeploy.dev/revision"] == canary


def test_abort_sends_the_canary_weight_to_zero_at_once(
    operator: OperatorProcess,
    httproute_crd: None,
    cluster: Cluster,
    kubelet: FakeKubelet,
    kubeconfig: Path,
) -> None:
    name = unique_name()
    stable, canary = start_canary(cluster, name)
    cluster.wait_phase(name, "Paused")
    assert weights(cluster, name) == {stable: 50, canary: 50}

    aborted = kubectl_modeldeploy(kubeconfig, "abort", name, "-n", cluster.ns)
    assert aborted.returncode == 0, aborted.stderr
    wait_for(
        lambda: weights(cluster, name) == {stable: 100, canary: 0},
        5,
        "the canary's weight to drop to 0",
    )
    status = cluster.wait_phase(name, "RolledBack")
    assert "aborted" in status["message"]
    # The canary stays listed at 0 while it exists, so traffic could return at once.
    assert weights(cluster, name) == {stable: 100, canary: 0}
    assert cluster.replicas(name) == {stable: 4, canary: 0}
    assert exists(cluster.core.read_namespaced_service, f"{name}-{canary}", cluster.ns)


def wait_stalled(cluster: Cluster, name: str, reason: str) -> dict[str, Any]:
    """The Stalled condition once status carries it with ``reason``."""

    def found() -> dict[str, Any] | None:
        conditions = cluster.status(name).get("conditions") or []
        return next(
            (c for c in conditions if c["type"] == "Stalled" and c["reason"] == reason), None
        )

    return wait_for(found, 30, f"a Stalled condition with reason {reason}")


def test_a_route_the_gateway_schema_refuses_stalls_with_the_servers_words(
    operator: OperatorProcess, httproute_crd: None, cluster: Cluster, kubelet: FakeKubelet
) -> None:
    # Our schema checks hostnames itself; a sectionName is left to Gateway API's own rules.
    name = unique_name()
    bad_ref = {"name": "gw", "sectionName": "Bad_Section"}
    cluster.apply(gateway_md(name, "v1", {**ROUTER, "parentRefs": [bad_ref]}))
    condition = wait_stalled(cluster, name, "Rejected")
    assert "spec.parentRefs[0].sectionName" in condition["message"]
    assert cluster.status(name)["message"] == condition["message"]
    assert cluster.event_reasons(name).count("Rejected") == 1
    assert route_of(cluster, name) is None


def test_a_route_name_another_controller_owns_is_left_alone(
    operator: OperatorProcess, httproute_crd: None, cluster: Cluster, kubelet: FakeKubelet
) -> None:
    name = unique_name()
    other = cluster.core.create_namespaced_config_map(
        cluster.ns, {"metadata": {"name": "someone-else"}}
    )
    foreign_owner = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "someone-else",
        "uid": other.metadata.uid,
        "controller": True,
    }
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "ownerReferences": [foreign_owner]},
        "spec": {"parentRefs": [{"name": "other-gw"}]},
    }
    cluster.custom.create_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", cluster.ns, "httproutes", route
    )
    cluster.apply(gateway_md(name, "v1"))
    condition = wait_stalled(cluster, name, "AdoptionConflict")
    assert condition["message"] == f"httproute {name} exists and is controlled by another owner"
    kept = route_of(cluster, name)
    assert kept is not None
    assert [ref["name"] for ref in kept["spec"]["parentRefs"]] == ["other-gw"]
    assert kept["metadata"]["ownerReferences"][0]["uid"] == other.metadata.uid


@pytest.fixture
def without_httproute_crd(k8s_api: client.ApiClient, httproute_crd: None) -> Iterator[None]:
    """Removes the HTTPRoute CRD for one test; always puts it back."""
    delete_httproute_crd(k8s_api)
    try:
        yield
    finally:
        install_httproute_crd(k8s_api)


# Keep last: it takes the CRD away from the shared cluster for a while.
def test_without_the_httproute_crd_the_operator_says_so_and_recovers_once_installed(
    operator: OperatorProcess,
    without_httproute_crd: None,
    k8s_api: client.ApiClient,
    cluster: Cluster,
    kubelet: FakeKubelet,
) -> None:
    name = unique_name()
    body = gateway_md(name, "v1")
    cluster.apply(body)

    def stalled() -> dict[str, Any] | None:
        status = cluster.status(name)
        return status if status.get("message", "").startswith(MISSING_CRD) else None

    status = wait_for(stalled, 30, "status to say the HTTPRoute CRD is missing")
    condition = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (condition["status"], condition["reason"]) == ("True", "RouterUnavailable")
    assert condition["message"] == status["message"]
    events = cluster.core.list_namespaced_event(
        cluster.ns,
        field_selector=f"involvedObject.name={name},reason=RouterUnavailable",
    ).items
    assert [e.type for e in events] == ["Warning"]
    assert events[0].message.startswith(MISSING_CRD)
    # Its pods becoming ready makes the operator look again: still one event, no crash loop.
    child = f"{name}-{revision(body)}"
    wait_for(
        lambda: (
            exists(cluster.apps.read_namespaced_deployment, child, cluster.ns)
            and cluster.deployment(child).status.available_replicas == 4
        ),
        30,
        "the revision's pods to be ready",
    )
    assert cluster.event_reasons(name).count("RouterUnavailable") == 1
    assert operator.proc is not None
    assert operator.proc.poll() is None, "the operator exited"
    assert f"reconcile of {cluster.ns}/{name} failed" not in operator.logs()

    install_httproute_crd(k8s_api)
    # The slow retry (30s) picks it up without anyone touching the object.
    route = wait_for(lambda: route_of(cluster, name), 60, "the route once the CRD is back")
    assert len(backends(route)) == 1
    final = cluster.wait_phase(name, "Succeeded", timeout=30)
    assert final["message"] == "serving v1"
    assert "Stalled" not in {c["type"] for c in final["conditions"]}
