"""Traffic routers: one module per implementation behind the ``Router`` interface."""

from __future__ import annotations

from modeldeploy.core.api import RouterType

from ..kube import Kube
from .base import Router
from .replicas import ReplicasRouter

__all__ = ["Router", "RouterNotSupportedError", "router_for"]


class RouterNotSupportedError(ValueError):
    """The spec names a router this operator build cannot drive."""


def router_for(router_type: RouterType, kube: Kube) -> Router:
    """The router for a spec; refuses types it does not know."""
    if router_type is RouterType.REPLICAS:
        return ReplicasRouter(kube)
    raise RouterNotSupportedError(
        f"router type {router_type.value} is not supported yet; use Replicas"
    )
