"""The ``GatewayAPI`` router: one HTTPRoute splits traffic by weight.

The HTTPRoute ``<name>`` (gateway.networking.k8s.io/v1, owned by the
ModelDeployment) attaches to the Gateways in ``spec.rollout.router.parentRefs``
and sends each revision Service ``<name>-<revision>`` its weight; any Gateway
API implementation applies it. Both revisions run at full size, so moving
traffic is one write. The user-facing Service ``<name>`` selects the stable
revision only: in-cluster clients that bypass the Gateway get stable.
"""

from __future__ import annotations

from collections.abc import Mapping

from modeldeploy.core.api import RouterSpec
from modeldeploy.core.children import Owner, selector_labels, user_service
from modeldeploy.core.routes import (
    ROUTE_GROUP,
    ROUTE_VERSION,
    http_route,
    route_patch,
    route_weights,
)

from ..errors import CannotProceedError
from ..kube import AdoptionError, Kube, owned_by_other_controller


class GatewayAPIMissingError(CannotProceedError):
    """The cluster does not serve the HTTPRoute API."""

    reason = "RouterUnavailable"


MISSING_CRD = (
    f"GatewayAPI router: the HTTPRoute CRD ({ROUTE_GROUP}/{ROUTE_VERSION}) is not installed; "
    "install the Gateway API CRDs (standard channel) or use the Replicas router"
)


class GatewayRouter:
    def __init__(self, kube: Kube, spec: RouterSpec) -> None:
        self._kube = kube
        self._spec = spec

    def reconcile(self, owner: Owner, stable_revision: str) -> None:
        self._kube.ensure_service(
            user_service(owner, selector_labels(owner.name, stable_revision)), owner.uid
        )

    def set_weights(self, owner: Owner, weights: Mapping[str, int]) -> None:
        """Read the route, compare, and write only what differs."""
        wanted = http_route(owner, self._spec, weights)
        current = self._kube.get_http_route(owner.namespace, owner.name)
        if current is not None:
            if owned_by_other_controller(current.get("metadata", {}), owner.uid):
                raise AdoptionError(
                    f"httproute {owner.name} exists and is controlled by another owner"
                )
            patch = route_patch(current, wanted)
            if patch is None or self._kube.patch_http_route(owner.namespace, owner.name, patch):
                return
            # Deleted since we read it (or the API went away): create it again.
        if not self._kube.create_http_route(wanted):
            raise GatewayAPIMissingError(MISSING_CRD)

    def read_weights(self, owner: Owner) -> dict[str, int]:
        route = self._kube.get_http_route(owner.namespace, owner.name)
        return {} if route is None else route_weights(route, owner.name)

    def finalize(self, owner: Owner) -> None:
        del owner  # the HTTPRoute is owned by the ModelDeployment and collected with it
