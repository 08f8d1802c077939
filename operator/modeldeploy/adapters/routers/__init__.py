"""Traffic routers: one module per implementation behind the ``Router`` interface."""

from __future__ import annotations

from modeldeploy.core.api import RouterSpec, RouterType

from ..errors import CannotProceedError
from ..kube import Kube
from .base import Router
from .gateway import GatewayRouter
from .replicas import ReplicasRouter

__all__ = ["Router", "RouterNotSupportedError", "router_for"]


class RouterNotSupportedError(CannotProceedError):
    """The spec names a router this operator build cannot drive."""

    reason = "RouterNotSupported"


def router_for(spec: RouterSpec, kube: Kube) -> Router:
    """The router for ``spec.rollout.router``; refuses types it does not know."""
    if spec.type is RouterType.REPLICAS:
        return ReplicasRouter(kube)
    if spec.type is RouterType.GATEWAY_API:
        return GatewayRouter(kube, spec)
    raise RouterNotSupportedError(f"router type {spec.type.value} is not supported")
