# ruff: noqa: ARG002 - the stand-in keeps Kube's signatures and ignores what it need not check
"""The executor with the GatewayAPI router: the order of its writes, and the router factory.

The cluster here is a small in-memory stand-in that records every write, so
the tests can say which write came first; the integration tests
(tests/integration/test_gateway_router.py) run the same code against a real
API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from modeldeploy.adapters.executor import Executor
from modeldeploy.adapters.routers import router_for
from modeldeploy.adapters.routers.gateway import GatewayAPIMissingError, GatewayRouter
from modeldeploy.adapters.routers.replicas import ReplicasRouter
from modeldeploy.core.api import ModelDeployment, ModelDeploymentStatus, Phase, RouterSpec
from modeldeploy.core.children import CANARY, STABLE
from modeldeploy.core.planner import Decision, RevisionState, RevisionTarget
from modeldeploy.core.routes import route_weights


class RecordingKube:
    """Answers the executor's calls from memory and records each write in order."""

    def __init__(self, *, routes_served: bool = True) -> None:
        self.routes_served = routes_served
        self.route: dict[str, Any] | None = None
        self.writes: list[tuple[str, Any]] = []

    def ensure_deployment(self, manifest: Mapping[str, Any], owner_uid: str) -> None:
        self.writes.append(("scale", (manifest["metadata"]["name"], manifest["spec"]["replicas"])))

    def scale_revision(
        self, namespace: str, name: str, replicas: int, labels: Any, refs: Any = None
    ) -> bool:
        self.writes.append(("scale", (name, replicas)))
        return True

    def ensure_service(self, manifest: Mapping[str, Any], owner_uid: str) -> None:
        self.writes.append(("service", manifest["metadata"]["name"]))

    def get_http_route(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.route

    def create_http_route(self, manifest: Mapping[str, Any]) -> bool:
        if not self.routes_served:
            return False
        self.route = dict(manifest)
        self.writes.append(("route", route_weights(self.route, "iris")))
        return True

    def patch_http_route(self, namespace: str, name: str, patch: Mapping[str, Any]) -> bool:
        assert self.route is not None
        self.route = {**self.route, "spec": patch["spec"]}
        self.writes.append(("route", route_weights(self.route, "iris")))
        return True

    def retire_revision(self, namespace: str, name: str, revision: str) -> None:
        self.writes.append(("retire", revision))

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.writes.append(("status", status["phase"]))


ROUTER = {"type": "GatewayAPI", "parentRefs": [{"name": "gw"}]}


def model_deployment() -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"namespace": "ns", "name": "iris", "uid": "uid-1"},
            "spec": {
                "model": {"uri": "https://models.example/v2.onnx", "version": "v2"},
                "serving": {"replicas": 4},
                "rollout": {"router": ROUTER},
            },
        }
    )


def decision(
    phase: Phase,
    targets: list[tuple[str, int, str]],
    weights: dict[str, int],
    retire: tuple[str, ...] = (),
) -> Decision:
    return Decision(
        status=ModelDeploymentStatus(phase=phase, stable_revision="old", canary_revision="new"),
        revision="new",
        targets=tuple(RevisionTarget(*t) for t in targets),
        retire=retire,
        weights=weights,
    )


def run(kube: RecordingKube, step: Decision, observed: dict[str, RevisionState]) -> None:
    Executor(kube).execute(model_deployment(), step, observed)  # type: ignore[arg-type]


def test_a_new_canary_has_its_pods_and_service_before_the_route_names_it() -> None:
    kube = RecordingKube()
    step = decision(
        Phase.PROGRESSING,
        [("old", 4, STABLE), ("new", 4, CANARY)],
        {"old": 100, "new": 0},
    )
    run(kube, step, {"old": RevisionState(4, 4, track=STABLE)})
    writes = kube.writes
    assert writes.index(("scale", ("iris-new", 4))) < writes.index(("service", "iris-new"))
    assert writes.index(("service", "iris-new")) < writes.index(("route", {"old": 100, "new": 0}))
    assert writes[-1] == ("status", "Progressing")


def test_a_rollback_takes_the_canarys_traffic_before_its_pods() -> None:
    kube = RecordingKube()
    seen = {"old": RevisionState(4, 4, track=STABLE), "new": RevisionState(4, 4, track=CANARY)}
    run(
        kube,
        decision(
            Phase.PROGRESSING, [("old", 4, STABLE), ("new", 4, CANARY)], {"old": 50, "new": 50}
        ),
        seen,
    )
    kube.writes.clear()
    rollback = decision(
        Phase.ROLLING_BACK, [("old", 4, STABLE), ("new", 0, CANARY)], {"old": 100, "new": 0}
    )
    run(kube, rollback, seen)
    writes = kube.writes
    assert writes.index(("route", {"old": 100, "new": 0})) < writes.index(
        ("scale", ("iris-new", 0))
    )


def test_a_retired_revision_leaves_the_route_before_its_service_is_deleted() -> None:
    kube = RecordingKube()
    seen = {"old": RevisionState(4, 4, track=STABLE), "new": RevisionState(4, 4, track=CANARY)}
    run(
        kube,
        decision(Phase.PROMOTING, [("old", 4, STABLE), ("new", 4, CANARY)], {"old": 0, "new": 100}),
        seen,
    )
    kube.writes.clear()
    promoted = decision(Phase.SUCCEEDED, [("new", 4, STABLE)], {"new": 100}, retire=("old",))
    run(kube, promoted, seen)
    writes = kube.writes
    assert writes.index(("route", {"new": 100})) < writes.index(("retire", "old"))


def test_without_the_httproute_api_nothing_claims_progress() -> None:
    kube = RecordingKube(routes_served=False)
    step = decision(Phase.SUCCEEDED, [("new", 4, STABLE)], {"new": 100})
    with pytest.raises(GatewayAPIMissingError) as raised:
        run(kube, step, {})
    assert str(raised.value).startswith(
        "GatewayAPI router: the HTTPRoute CRD (gateway.networking.k8s.io/v1) is not installed"
    )
    assert raised.value.reason == "RouterUnavailable"
    assert not any(kind in {"status", "retire"} for kind, _ in kube.writes)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [({"type": "Replicas"}, ReplicasRouter), (ROUTER, GatewayRouter)],
)
def test_the_factory_picks_the_router_the_spec_names(spec: dict[str, Any], kind: type) -> None:
    router = router_for(RouterSpec.model_validate(spec), RecordingKube())  # type: ignore[arg-type]
    assert isinstance(router, kind)
