"""The HTTPRoute of the ``GatewayAPI`` router, as pure functions.

``http_route`` builds the route a ModelDeployment owns from the router spec
and the planner's weights; ``route_weights`` reads the weights back from a
route; ``route_patch`` says what to write to bring a route read from the API
server to the wanted one, or ``None`` when nothing differs, so the adapter
only writes when something changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .api import RouterSpec
from .children import MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, Owner, revision_name

ROUTE_GROUP = "gateway.networking.k8s.io"
ROUTE_VERSION = "v1"
ROUTE_PLURAL = "httproutes"
ROUTE_KIND = "HTTPRoute"
BACKEND_PORT = 80  # the revision Services' port


def route_labels(name: str) -> dict[str, str]:
    return {NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY}


def http_route(owner: Owner, router: RouterSpec, weights: Mapping[str, int]) -> dict[str, Any]:
    """The HTTPRoute ``<name>``: one rule sending each revision its weight (percent).

    A revision at weight 0 stays listed, so traffic can return to it at once;
    a revision absent from ``weights`` is absent from the route.
    """
    backends = [
        {"name": revision_name(owner.name, revision), "port": BACKEND_PORT, "weight": weight}
        for revision, weight in weights.items()
    ]
    return {
        "apiVersion": f"{ROUTE_GROUP}/{ROUTE_VERSION}",
        "kind": ROUTE_KIND,
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": route_labels(owner.name),
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "parentRefs": [
                ref.model_dump(by_alias=True, exclude_none=True) for ref in router.parent_refs
            ],
            # Always present (even empty) so a patch also removes hostnames.
            "hostnames": list(router.hostnames),
            "rules": [{"backendRefs": backends}],
        },
    }


def route_weights(route: Mapping[str, Any], name: str) -> dict[str, int]:
    """Each revision's weight in a route ``<name>``; backends of other objects are skipped."""
    prefix = f"{name}-"
    weights: dict[str, int] = {}
    for rule in route.get("spec", {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            backend = ref.get("name", "")
            if ref.get("kind", "Service") != "Service" or not backend.startswith(prefix):
                continue
            revision = backend.removeprefix(prefix)
            # Gateway API's default weight is 1.
            weights[revision] = weights.get(revision, 0) + int(ref.get("weight", 1))
    return weights


def _covers(current: Any, wanted: Any) -> bool:
    """Whether ``current`` already says everything ``wanted`` says.

    Keys only ``current`` has are ignored: the API server fills defaults
    (a backend's ``kind``, a rule's ``matches``) that the builder leaves out.
    Lists must match item by item; an empty wanted value matches a missing one.
    """
    if isinstance(wanted, Mapping):
        if not isinstance(current, Mapping):
            return not wanted and current is None
        return all(_covers(current.get(key), value) for key, value in wanted.items())
    if isinstance(wanted, list):
        if current is None:
            return not wanted
        if not isinstance(current, list) or len(current) != len(wanted):
            return False
        return all(_covers(have, want) for have, want in zip(current, wanted, strict=True))
    return bool(current == wanted)


def route_patch(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch turning ``current`` into ``wanted``, or None if nothing differs.

    The patch carries the whole spec (merge patches replace lists whole),
    the labels and the owner reference.
    """
    meta = current.get("metadata", {})
    want_meta = wanted["metadata"]
    uid = want_meta["ownerReferences"][0]["uid"]
    owned = any(
        ref.get("uid") == uid and ref.get("controller") for ref in meta.get("ownerReferences") or []
    )
    if (
        owned
        and _covers(meta.get("labels"), want_meta["labels"])
        and _covers(current.get("spec"), wanted["spec"])
    ):
        return None
    return {
        "metadata": {
            "labels": want_meta["labels"],
            "ownerReferences": want_meta["ownerReferences"],
        },
        "spec": wanted["spec"],
    }
