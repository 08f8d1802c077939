"""Kubernetes access for the operator and the kubectl plugin.

A thin, synchronous wrapper over the official client: read ModelDeployments
and their revision Deployments, create-or-adopt children, scale and relabel
them, retire revisions, and write status. Handlers call it through
``asyncio.to_thread``. Conflicts and 404s are turned into plain outcomes;
what no retry can fix (a name another controller owns, an object the API
server refuses) raises a ``CannotProceedError``; everything else propagates
so the tick is retried.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modeldeploy.core.api import GROUP, PLURAL, VERSION
from modeldeploy.core.children import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    REVISION_LABEL,
    TRACK_LABEL,
    revision_name,
)
from modeldeploy.core.planner import RevisionState
from modeldeploy.core.routes import ROUTE_GROUP, ROUTE_PLURAL, ROUTE_VERSION

from .errors import CannotProceedError

NOT_FOUND = 404
CONFLICT = 409
UNPROCESSABLE = 422


def load_config(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    return client.ApiClient(configuration)


def owned_by_other_controller(meta: Mapping[str, Any], uid: str) -> bool:
    """Whether another controller owns the object: the operator must leave it alone."""
    refs = meta.get("ownerReferences") or []
    return any(ref.get("controller") and ref.get("uid") != uid for ref in refs)


class AdoptionError(CannotProceedError):
    """A child's name is taken by an object another controller owns."""

    reason = "AdoptionConflict"


class RejectedError(CannotProceedError):
    """The API server refuses a child as invalid: the spec it comes from must change."""

    reason = "Rejected"


def _refusal(exc: ApiException) -> str:
    """The API server's own words from an error response."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


class Kube:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = api_client
        self.custom = client.CustomObjectsApi(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    def _to_dict(self, obj: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self._api.sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]

    # --- ModelDeployments ---------------------------------------------------

    def get_model_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return cast(
                dict[str, Any],
                self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name),
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return None
            raise

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": dict(status)}
        )

    def annotate(self, namespace: str, name: str, annotations: Mapping[str, str | None]) -> None:
        """Set (or with None remove) annotations; metadata only, never spec."""
        body = {"metadata": {"annotations": dict(annotations)}}
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)

    # --- revisions ----------------------------------------------------------

    def list_revisions(self, namespace: str, name: str) -> dict[str, RevisionState]:
        selector = f"{NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"
        found = self.apps.list_namespaced_deployment(namespace, label_selector=selector)
        states: dict[str, RevisionState] = {}
        for item in found.items:
            meta = item.metadata
            labels = (meta.labels if meta else None) or {}
            revision = labels.get(REVISION_LABEL)
            if meta is None or not revision:
                continue
            observed = (item.status.observed_generation or 0) if item.status else 0
            states[revision] = RevisionState(
                replicas=item.spec.replicas or 0,
                available=(item.status.available_replicas or 0) if item.status else 0,
                up_to_date=observed >= (meta.generation or 0),
                track=labels.get(TRACK_LABEL),
            )
        return states

    def ensure_deployment(self, manifest: Mapping[str, Any], owner_uid: str) -> None:
        """Create the Deployment, or adopt an existing one and set replicas and labels."""
        meta = manifest["metadata"]
        try:
            self.apps.create_namespaced_deployment(meta["namespace"], cast(Any, dict(manifest)))
            return
        except ApiException as exc:
            if exc.status != CONFLICT:
                raise
        current = self._to_dict(
            self.apps.read_namespaced_deployment(meta["name"], meta["namespace"])
        )
        if owned_by_other_controller(current["metadata"], owner_uid):
            raise AdoptionError(
                f"deployment {meta['name']} exists and is controlled by another owner"
            )
        self.scale_revision(
            meta["namespace"],
            meta["name"],
            manifest["spec"]["replicas"],
            meta["labels"],
            meta["ownerReferences"],
        )

    def scale_revision(
        self,
        namespace: str,
        deployment_name: str,
        replicas: int,
        labels: Mapping[str, str],
        owner_references: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Set replicas and labels of an existing Deployment (pods are not restarted)."""
        metadata: dict[str, Any] = {"labels": dict(labels)}
        if owner_references is not None:
            metadata["ownerReferences"] = owner_references
        body = {"metadata": metadata, "spec": {"replicas": replicas}}
        try:
            self.apps.patch_namespaced_deployment(deployment_name, namespace, body)
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return False
            raise
        return True

    def ensure_service(self, manifest: Mapping[str, Any], owner_uid: str) -> None:
        """Create the Service, or adopt it and fix its selector and labels if they drifted."""
        meta = manifest["metadata"]
        try:
            found = self.core.read_namespaced_service(meta["name"], meta["namespace"])
        except ApiException as exc:
            if exc.status != NOT_FOUND:
                raise
            self.core.create_namespaced_service(meta["namespace"], cast(Any, dict(manifest)))
            return
        current = self._to_dict(found)
        if owned_by_other_controller(current["metadata"], owner_uid):
            raise AdoptionError(f"service {meta['name']} exists and is controlled by another owner")
        same_selector = current["spec"].get("selector") == manifest["spec"]["selector"]
        same_labels = current["metadata"].get("labels", {}) == meta["labels"]
        owned = any(
            ref.get("uid") == owner_uid for ref in current["metadata"].get("ownerReferences") or []
        )
        if same_selector and same_labels and owned:
            return
        body = {
            "metadata": {"labels": meta["labels"], "ownerReferences": meta["ownerReferences"]},
            "spec": {"selector": manifest["spec"]["selector"]},
        }
        self.core.patch_namespaced_service(meta["name"], meta["namespace"], body)

    # --- HTTPRoutes (Gateway API) ---------------------------------------------
    # A 404 on create or patch means the API itself is not served (the CRD
    # is missing): these return False then, and the router says so. A 422
    # (e.g. a hostname the schema refuses) cannot succeed on retry either.

    def get_http_route(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The route, or None if it (or the HTTPRoute API) does not exist."""
        try:
            return cast(
                dict[str, Any],
                self.custom.get_namespaced_custom_object(
                    ROUTE_GROUP, ROUTE_VERSION, namespace, ROUTE_PLURAL, name
                ),
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return None
            raise

    def create_http_route(self, manifest: Mapping[str, Any]) -> bool:
        namespace = manifest["metadata"]["namespace"]
        try:
            self.custom.create_namespaced_custom_object(
                ROUTE_GROUP, ROUTE_VERSION, namespace, ROUTE_PLURAL, dict(manifest)
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return False
            if exc.status == UNPROCESSABLE:
                raise RejectedError(_refusal(exc)) from exc
            raise
        return True

    def patch_http_route(self, namespace: str, name: str, patch: Mapping[str, Any]) -> bool:
        """JSON merge patch (lists in it replace the stored ones)."""
        try:
            self.custom.patch_namespaced_custom_object(
                ROUTE_GROUP, ROUTE_VERSION, namespace, ROUTE_PLURAL, name, dict(patch)
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return False
            if exc.status == UNPROCESSABLE:
                raise RejectedError(_refusal(exc)) from exc
            raise
        return True

    def retire_revision(self, namespace: str, name: str, revision: str) -> None:
        child = revision_name(name, revision)
        for delete in (self.apps.delete_namespaced_deployment, self.core.delete_namespaced_service):
            try:
                delete(child, namespace, propagation_policy="Background")
            except ApiException as exc:
                if exc.status != NOT_FOUND:
                    raise

    def post_event(
        self, involved: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None:
        """Record a Kubernetes Event on the ModelDeployment (what `kubectl describe` shows)."""
        meta = involved["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "modeldeploy-operator"},
            "reportingComponent": "modeldeploy.dev/operator",
            "reportingInstance": "modeldeploy-operator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self.core.create_namespaced_event(meta["namespace"], cast(Any, body))
