"""The Kubernetes objects a ModelDeployment owns, as plain manifests.

Pure builders: given the spec, a revision and the owner, return the dicts
the adapters apply. Labels follow DESIGN.md: pods carry name and revision
only; the track label lives on objects that may change at promotion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .api import GROUP, KIND, VERSION, ModelDeploymentSpec

NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT_LABEL = "app.kubernetes.io/component"
REVISION_LABEL = f"{GROUP}/revision"
TRACK_LABEL = f"{GROUP}/track"
MANAGED_BY = "modeldeploy"
SERVING_PORT = 3000

STABLE = "stable"
CANARY = "canary"


@dataclass(frozen=True)
class Owner:
    """Enough of the ModelDeployment to own and label its children."""

    namespace: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def revision_name(name: str, revision: str) -> str:
    return f"{name}-{revision}"


def selector_labels(name: str, revision: str) -> dict[str, str]:
    return {NAME_LABEL: name, REVISION_LABEL: revision}


def object_labels(name: str, revision: str, track: str) -> dict[str, str]:
    return {
        **selector_labels(name, revision),
        MANAGED_BY_LABEL: MANAGED_BY,
        COMPONENT_LABEL: "model-server",
        TRACK_LABEL: track,
    }


def _metadata(owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels,
        "ownerReferences": [owner.reference()],
    }


def _serving_env(spec: ModelDeploymentSpec, model_name: str) -> list[dict[str, str]]:
    serving = spec.serving
    env = {
        "MODEL_URI": spec.model.uri,
        "MODEL_SHA256": spec.model.sha256 or "",
        "MODEL_NAME": model_name,
        "MODEL_VERSION": spec.model.version,
        "MAX_REQUEST_BYTES": str(serving.max_request_bytes),
        "MAX_BATCH_ROWS": str(serving.max_batch_rows),
        "REQUEST_TIMEOUT_SECONDS": str(serving.request_timeout_seconds),
    }
    return [{"name": key, "value": value} for key, value in env.items()]


def _probe(path: str, period: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period}


def deployment(
    owner: Owner, spec: ModelDeploymentSpec, revision: str, replicas: int, track: str
) -> dict[str, Any]:
    """The Deployment that runs one revision of the model."""
    model_name = spec.model.name or owner.name
    container: dict[str, Any] = {
        "name": "server",
        "image": spec.serving.image,
        "ports": [{"name": "http", "containerPort": SERVING_PORT}],
        "env": _serving_env(spec, model_name),
        "readinessProbe": _probe("/v2/health/ready", 2),
        "livenessProbe": _probe("/v2/health/live", 10),
        "resources": spec.serving.resources.model_dump(by_alias=True),
        # Fits the "restricted" Pod Security Standard, so locked-down
        # namespaces accept the pods.
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(
            owner, revision_name(owner.name, revision), object_labels(owner.name, revision, track)
        ),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(owner.name, revision)},
            "template": {
                "metadata": {
                    "labels": {
                        **selector_labels(owner.name, revision),
                        MANAGED_BY_LABEL: MANAGED_BY,
                    }
                },
                "spec": {"containers": [container]},
            },
        },
    }


def _service(owner: Owner, name: str, labels: dict[str, str], selector: dict[str, str]) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, name, labels),
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def revision_service(owner: Owner, revision: str, track: str) -> dict[str, Any]:
    """The Service of one revision: analysis and the Gateway route address it."""
    return _service(  # type: ignore[no-any-return]
        owner,
        revision_name(owner.name, revision),
        object_labels(owner.name, revision, track),
        selector_labels(owner.name, revision),
    )


def user_service(owner: Owner, selector: dict[str, str]) -> dict[str, Any]:
    """The Service ``<name>`` that clients call; the router decides its selector."""
    labels = {NAME_LABEL: owner.name, MANAGED_BY_LABEL: MANAGED_BY}
    return _service(owner, owner.name, labels, selector)  # type: ignore[no-any-return]


def all_revisions_selector(name: str) -> dict[str, str]:
    return {NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY}
