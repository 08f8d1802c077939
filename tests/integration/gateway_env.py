"""The Gateway API's HTTPRoute CRD for the GatewayAPI router tests.

The CRD comes from the published Go module sigs.k8s.io/gateway-api, which
``tools/cluster/gateway-api-crds.sh`` downloads into the project's Go module
cache (``make test`` runs it). Tests only read that cache (``GOPROXY=off``):
a missing download fails them with a message naming the script.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from md_env import ROOT, install_crd, require_tool, wait_for

CRDS_SCRIPT = ROOT / "tools/cluster/gateway-api-crds.sh"
ROUTE_GROUP, ROUTE_VERSION, ROUTE_PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
HTTPROUTE_CRD = f"{ROUTE_PLURAL}.{ROUTE_GROUP}"


def standard_crds_dir() -> Path:
    """config/crd/standard of the pinned module, from the cache only."""
    result = subprocess.run(
        ["bash", str(CRDS_SCRIPT)],
        env={**os.environ, "GOPROXY": "off"},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            "the Gateway API CRDs are not downloaded: run tools/cluster/gateway-api-crds.sh "
            f"(`make test` does)\n{result.stderr.strip()}"
        )
    return Path(result.stdout.strip())


def _routes_served(api: client.ApiClient) -> bool:
    try:
        client.CustomObjectsApi(api).list_namespaced_custom_object(
            ROUTE_GROUP, ROUTE_VERSION, "default", ROUTE_PLURAL
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def install_httproute_crd(api: client.ApiClient) -> None:
    install_crd(api, standard_crds_dir() / f"{ROUTE_GROUP}_{ROUTE_PLURAL}.yaml")
    wait_for(lambda: _routes_served(api), 30, "the API server to serve HTTPRoutes")


def delete_httproute_crd(api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api)
    try:
        ext.delete_custom_resource_definition(HTTPROUTE_CRD)
    except ApiException as exc:
        if exc.status != 404:
            raise

    def gone() -> bool:
        try:
            ext.read_custom_resource_definition(HTTPROUTE_CRD)
        except ApiException as exc:
            if exc.status == 404:
                return not _routes_served(api)
            raise
        return False

    wait_for(gone, 60, "the HTTPRoute CRD to be deleted")


def read_route(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(
            client.CustomObjectsApi(api).get_namespaced_custom_object(
                ROUTE_GROUP, ROUTE_VERSION, namespace, ROUTE_PLURAL, name
            )
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def backends(route: dict[str, Any] | None) -> dict[str, int]:
    """Backend Service name -> weight, over every rule (empty without a route)."""
    if route is None:
        return {}
    return {
        ref["name"]: ref.get("weight", 1)
        for rule in route["spec"].get("rules") or []
        for ref in rule.get("backendRefs") or []
    }


_ROUTE_WRITE = re.compile(
    r'^apiserver_request_total\{(?=[^}]*resource="httproutes")(?=[^}]*verb="(?:PATCH|PUT|POST)")'
    r"[^}]*\} (\S+)$",
    re.MULTILINE,
)


def route_writes(kubeconfig: Path) -> float:
    """HTTPRoute writes the API server has counted (its own metric, every namespace).

    A write that changes nothing leaves an object's resourceVersion alone,
    so only the server's request count shows whether the operator skipped it.
    """
    kubectl = require_tool("kubectl", "run `make k8s-build` and put its bin directory on PATH")
    metrics = subprocess.run(
        [kubectl, "get", "--raw", "/metrics"],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(float(value) for value in _ROUTE_WRITE.findall(metrics))
