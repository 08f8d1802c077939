"""The local control plane behaves like a real cluster's.

These tests pin what the rest of the suite relies on: the components built by
tools/cluster/build.sh report their real version, RBAC and PodSecurity
admission are enforced, and the controllers the operator depends on (garbage
collector, deployment, replicaset, serviceaccount) run.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client import ApiException

T = TypeVar("T")

GO_MOD = Path(__file__).resolve().parents[2] / "tools" / "cluster" / "k8s" / "go.mod"
# Never pulled: nothing runs containers in the control plane alone.
IMAGE = "registry.invalid/modeldeploy/none:0"


def eventually(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Polls `probe` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


def _message(exc: ApiException) -> str:
    """The human message of the Status an API error carries."""
    return str(json.loads(exc.body or "{}").get("message", exc.reason))


def _pod(name: str, *, privileged: bool) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="main",
                    image=IMAGE,
                    security_context=client.V1SecurityContext(privileged=privileged),
                )
            ]
        ),
    )


def test_components_report_the_built_version(k8s_api: client.ApiClient) -> None:
    match = re.search(r"^require k8s\.io/kubernetes (v\S+)$", GO_MOD.read_text(), re.M)
    assert match, f"no k8s.io/kubernetes require line in {GO_MOD}"
    info: Any = client.VersionApi(k8s_api).get_code()
    assert info.git_version == match.group(1)
    assert f"{info.major}.{info.minor}" == match.group(1)[1:].rsplit(".", 1)[0]


def test_rbac_denies_a_service_account_without_bindings(
    k8s_api: client.ApiClient,
    namespace: str,
    sa_api_client: Callable[[str, str], client.ApiClient],
) -> None:
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    sa_core = client.CoreV1Api(sa_api_client(namespace, "nobody"))
    with pytest.raises(ApiException) as denied:
        sa_core.list_namespaced_config_map(namespace)
    # 403, not 401: the token authenticated and RBAC said no.
    assert denied.value.status == 403
    assert f'User "system:serviceaccount:{namespace}:nobody" cannot list' in _message(denied.value)

    # The same account is allowed once a RoleBinding grants it.
    rbac = client.RbacAuthorizationV1Api(k8s_api)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="read-configmaps"),
            rules=[
                client.V1PolicyRule(
                    api_groups=[""], resources=["configmaps"], verbs=["get", "list"]
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="nobody-reads-configmaps"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="read-configmaps"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="nobody", namespace=namespace)
            ],
        ),
    )

    def allowed() -> bool | None:
        try:
            sa_core.list_namespaced_config_map(namespace)
        except ApiException as exc:
            if exc.status == 403:
                return None
            raise
        return True

    # The RBAC authorizer reads bindings through an informer: allow a moment.
    eventually(allowed, 10, "the RoleBinding to take effect")
    with pytest.raises(ApiException) as still_denied:
        sa_core.list_namespaced_secret(namespace)
    assert still_denied.value.status == 403


def test_pod_security_rejects_a_privileged_pod_in_a_restricted_namespace(
    k8s_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(k8s_api)
    # Control: without a PodSecurity label the same pod is admitted, so what
    # rejects it below is PodSecurity, not pod validation.
    core.create_namespaced_pod(namespace, _pod("privileged-allowed", privileged=True))

    core.patch_namespace(
        namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    with pytest.raises(ApiException) as rejected:
        core.create_namespaced_pod(namespace, _pod("privileged-rejected", privileged=True))
    assert rejected.value.status == 403
    message = _message(rejected.value)
    assert 'violates PodSecurity "restricted:latest"' in message
    assert "must not set securityContext.privileged=true" in message


def test_garbage_collector_deletes_an_owned_configmap_with_its_owner(
    k8s_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(k8s_api)
    owner: Any = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="dependent",
                owner_references=[
                    client.V1OwnerReference(
                        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
                    )
                ],
            )
        ),
    )
    core.delete_namespaced_config_map("owner", namespace)

    def dependent_gone() -> bool | None:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return None

    eventually(dependent_gone, 60, "the garbage collector to delete the dependent ConfigMap")


def test_deployment_controller_creates_a_replicaset_and_pods(
    k8s_api: client.ApiClient, namespace: str
) -> None:
    labels = {"app.kubernetes.io/name": "demo"}
    apps = client.AppsV1Api(k8s_api)
    core = client.CoreV1Api(k8s_api)
    deployment: Any = apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="demo"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="main", image=IMAGE)]
                    ),
                ),
            ),
        ),
    )

    def replicaset() -> Any:
        items: list[Any] = apps.list_namespaced_replica_set(namespace).items
        for candidate in items:
            owners = candidate.metadata.owner_references or []
            if any(o.uid == deployment.metadata.uid and o.controller for o in owners):
                return candidate
        return None

    rs: Any = eventually(replicaset, 30, "a ReplicaSet owned by the Deployment")
    assert rs.spec.replicas == 2

    def pods() -> list[Any] | None:
        items: list[Any] = core.list_namespaced_pod(namespace).items
        owned = [
            pod
            for pod in items
            if any(o.uid == rs.metadata.uid for o in pod.metadata.owner_references or [])
        ]
        return owned if len(owned) == 2 else None

    created = eventually(pods, 30, "2 Pods owned by the ReplicaSet")
    for pod in created:
        assert pod.metadata.labels["app.kubernetes.io/name"] == "demo"
        # No scheduler and no kubelet: the pods exist but never run.
        assert pod.status.phase == "Pending"
