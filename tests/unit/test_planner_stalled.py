"""A stalled tick in status (``planner.stalled``) and the tick after it; the scale order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modeldeploy.core.api import ModelDeploymentSpec, ModelDeploymentStatus, Phase
from modeldeploy.core.children import CANARY, STABLE
from modeldeploy.core.planner import (
    STALLED,
    Observations,
    RevisionState,
    RevisionTarget,
    plan,
    scale_order,
    stalled,
)
from modeldeploy.core.revision import revision_of

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
MISSING = "GatewayAPI router: the HTTPRoute CRD (gateway.networking.k8s.io/v1) is not installed"
SPEC = ModelDeploymentSpec.model_validate(
    {
        "model": {"uri": "https://models.example/v1.onnx", "version": "v1"},
        "serving": {"replicas": 2},
        "rollout": {"router": {"type": "GatewayAPI", "parentRefs": [{"name": "gw"}]}},
    }
)
REV = revision_of(SPEC)


def succeeded(message: str = "promoted v1 (revision abc); old retired") -> ModelDeploymentStatus:
    """A steady status as the planner leaves it, with a message it chose."""
    obs = Observations(generation=1, revisions={REV: RevisionState(2, 2)})
    status = plan(SPEC, ModelDeploymentStatus(), obs, T0).status
    status = status.model_copy(update={"message": message})
    return plan(SPEC, status, obs, T0).status


def test_a_stalled_tick_changes_only_the_message_and_the_stalled_condition() -> None:
    before = succeeded()
    after = stalled(before, "RouterUnavailable", MISSING, T0 + timedelta(seconds=5))
    assert after.message == MISSING
    condition = next(c for c in after.conditions if c.type == STALLED)
    assert (condition.status, condition.reason, condition.message) == (
        "True",
        "RouterUnavailable",
        MISSING,
    )
    assert after.model_copy(
        update={"message": before.message, "conditions": before.conditions}
    ) == (before)
    assert [c for c in after.conditions if c.type != STALLED] == before.conditions


def test_reporting_the_same_stall_again_changes_nothing() -> None:
    once = stalled(succeeded(), "RouterUnavailable", MISSING, T0)
    assert stalled(once, "RouterUnavailable", MISSING, T0 + timedelta(minutes=5)) == once


def test_the_tick_after_a_stall_restores_the_planners_message_and_drops_the_condition() -> None:
    before = succeeded()
    blocked = stalled(before, "RouterUnavailable", MISSING, T0)
    obs = Observations(generation=1, revisions={REV: RevisionState(2, 2)})
    after = plan(SPEC, blocked, obs, T0 + timedelta(minutes=1)).status
    assert after.message == before.message
    assert STALLED not in {c.type for c in after.conditions}
    assert after == before


def test_a_new_object_stalled_before_its_first_decision_gets_a_fresh_message() -> None:
    blocked = stalled(ModelDeploymentStatus(), "RouterUnavailable", MISSING, T0)
    assert blocked.phase is Phase.PENDING
    obs = Observations(generation=1, revisions={REV: RevisionState(2, 2)})
    after = plan(SPEC, blocked, obs, T0).status
    assert after.phase is Phase.SUCCEEDED
    assert after.message == "serving v1"


def test_growing_revisions_come_before_shrinking_ones() -> None:
    observed = {"old": RevisionState(4, 4), "new": RevisionState(0, 0), "same": RevisionState(2, 2)}
    targets = (
        RevisionTarget("old", 0, STABLE),
        RevisionTarget("new", 4, CANARY),
        RevisionTarget("same", 2, STABLE),
        RevisionTarget("unseen", 1, CANARY),
    )
    grow, shrink = scale_order(targets, observed)
    assert [t.revision for t in grow] == ["new", "same", "unseen"]
    assert [t.revision for t in shrink] == ["old"]
