"""core.routes: the GatewayAPI router's HTTPRoute built from weights, read back, and compared."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modeldeploy.core.api import RouterSpec
from modeldeploy.core.children import Owner
from modeldeploy.core.routes import http_route, route_patch, route_weights

OWNER = Owner(namespace="ns", name="iris", uid="uid-1")
ROUTER = RouterSpec.model_validate(
    {
        "type": "GatewayAPI",
        "parentRefs": [
            {"name": "gw"},
            {"name": "edge", "namespace": "infra", "sectionName": "https"},
        ],
        "hostnames": ["iris.example"],
    }
)


def as_served(route: dict[str, Any]) -> dict[str, Any]:
    """The route as the API server returns it: defaults filled, server metadata added."""
    served = copy.deepcopy(route)
    served["metadata"].update(uid="route-uid", resourceVersion="7", generation=1)
    for ref in served["spec"]["parentRefs"]:
        ref.update(group="gateway.networking.k8s.io", kind="Gateway")
    for rule in served["spec"]["rules"]:
        rule["matches"] = [{"path": {"type": "PathPrefix", "value": "/"}}]
        for backend in rule["backendRefs"]:
            backend.update(group="", kind="Service")
    served["status"] = {"parents": []}
    return served


def test_the_route_is_owned_labelled_and_attached_to_the_spec_gateways() -> None:
    route = http_route(OWNER, ROUTER, {"aaa": 75, "bbb": 25})
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["kind"] == "HTTPRoute"
    meta = route["metadata"]
    assert (meta["name"], meta["namespace"]) == ("iris", "ns")
    assert meta["labels"] == {
        "app.kubernetes.io/name": "iris",
        "app.kubernetes.io/managed-by": "modeldeploy",
    }
    assert meta["ownerReferences"] == [OWNER.reference()]
    assert meta["ownerReferences"][0]["controller"] is True
    assert route["spec"]["parentRefs"] == [
        {"name": "gw"},
        {"name": "edge", "namespace": "infra", "sectionName": "https"},
    ]
    assert route["spec"]["hostnames"] == ["iris.example"]


def test_one_rule_sends_each_revision_service_its_weight() -> None:
    route = http_route(OWNER, ROUTER, {"aaa": 75, "bbb": 25})
    assert route["spec"]["rules"] == [
        {
            "backendRefs": [
                {"name": "iris-aaa", "port": 80, "weight": 75},
                {"name": "iris-bbb", "port": 80, "weight": 25},
            ]
        }
    ]


def test_a_revision_at_weight_zero_stays_listed() -> None:
    route = http_route(OWNER, ROUTER, {"aaa": 100, "bbb": 0})
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert {"name": "iris-bbb", "port": 80, "weight": 0} in backends


def test_no_hostnames_is_an_explicit_empty_list() -> None:
    # so that a merge patch removes hostnames a previous spec had
    router = RouterSpec.model_validate({"type": "GatewayAPI", "parentRefs": [{"name": "gw"}]})
    assert http_route(OWNER, router, {"aaa": 100})["spec"]["hostnames"] == []


@given(st.dictionaries(st.text("abcdef0123456789", min_size=1, max_size=10), st.integers(0, 100)))
def test_weights_read_back_are_the_weights_written(weights: dict[str, int]) -> None:
    assert route_weights(as_served(http_route(OWNER, ROUTER, weights)), "iris") == weights


def test_reading_weights_applies_the_default_and_skips_other_backends() -> None:
    route = {
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        {"name": "iris-aaa", "port": 80},  # Gateway API default weight: 1
                        {"name": "other-svc", "port": 80, "weight": 5},
                        {"name": "iris-bbb", "kind": "ServiceImport", "weight": 5},
                    ]
                }
            ]
        }
    }
    assert route_weights(route, "iris") == {"aaa": 1}
    assert route_weights({}, "iris") == {}


def test_a_served_route_with_server_defaults_needs_no_write() -> None:
    route = http_route(OWNER, ROUTER, {"aaa": 50, "bbb": 50})
    assert route_patch(as_served(route), route) is None


def test_a_route_without_hostnames_matches_an_empty_list() -> None:
    router = RouterSpec.model_validate({"type": "GatewayAPI", "parentRefs": [{"name": "gw"}]})
    route = http_route(OWNER, router, {"aaa": 100})
    served = as_served(route)
    del served["spec"]["hostnames"]
    assert route_patch(served, route) is None


def _changed(change: str) -> dict[str, Any]:
    served = as_served(http_route(OWNER, ROUTER, {"aaa": 50, "bbb": 50}))
    spec = served["spec"]
    if change == "weight":
        spec["rules"][0]["backendRefs"][1]["weight"] = 25
    elif change == "backend-added":
        spec["rules"][0]["backendRefs"].append({"name": "iris-ccc", "port": 80, "weight": 0})
    elif change == "backend-removed":
        spec["rules"][0]["backendRefs"].pop()
    elif change == "hostname":
        spec["hostnames"] = ["old.example"]
    elif change == "parent":
        spec["parentRefs"] = spec["parentRefs"][:1]
    elif change == "label":
        del served["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    elif change == "not-owned":
        served["metadata"]["ownerReferences"] = []
    return served


@pytest.mark.parametrize(
    "change",
    ["weight", "backend-added", "backend-removed", "hostname", "parent", "label", "not-owned"],
)
def test_any_difference_in_what_the_operator_owns_is_patched(change: str) -> None:
    wanted = http_route(OWNER, ROUTER, {"aaa": 50, "bbb": 50})
    patch = route_patch(_changed(change), wanted)
    assert patch == {
        "metadata": {
            "labels": wanted["metadata"]["labels"],
            "ownerReferences": wanted["metadata"]["ownerReferences"],
        },
        "spec": wanted["spec"],
    }


def test_a_retired_revision_leaves_the_route() -> None:
    served = as_served(http_route(OWNER, ROUTER, {"aaa": 0, "bbb": 100}))
    patch = route_patch(served, http_route(OWNER, ROUTER, {"bbb": 100}))
    assert patch is not None
    assert patch["spec"]["rules"][0]["backendRefs"] == [
        {"name": "iris-bbb", "port": 80, "weight": 100}
    ]
