"""The rollout planner, one rule per test, with an injected clock and a fake cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modeldeploy.core.api import (
    AnalysisSpec,
    CheckResult,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Phase,
    RouterType,
    Verdict,
)
from modeldeploy.core.children import CANARY, STABLE
from modeldeploy.core.planner import (
    AnalysisRound,
    Decision,
    Observations,
    Requests,
    RevisionState,
    analysis_due,
    plan,
    replica_split,
)
from modeldeploy.core.revision import revision_of

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def make_spec(version: str = "v1", *, replicas: int = 4, **rollout: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {"uri": f"https://models.example/{version}.onnx", "version": version},
            "serving": {"replicas": replicas},
            "rollout": {
                "steps": [
                    {"setWeight": 25},
                    {"pause": {"duration": "30s"}},
                    {"setWeight": 50},
                    {"pause": {}},
                    {"setWeight": 100},
                ],
                **rollout,
            },
        }
    )


@dataclass
class FakeCluster:
    """Applies decisions like a cluster whose pods become ready at once (unless held)."""

    revisions: dict[str, RevisionState] = field(default_factory=dict)
    unready: set[str] = field(default_factory=set)

    def apply(self, decision: Decision) -> None:
        for target in decision.targets:
            available = 0 if target.revision in self.unready else target.replicas
            self.revisions[target.revision] = RevisionState(
                target.replicas, available, track=target.track
            )
        for revision in decision.retire:
            self.revisions.pop(revision, None)


@dataclass
class Harness:
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    cluster: FakeCluster = field(default_factory=FakeCluster)
    now: datetime = T0
    requests: Requests = Requests()
    last: Decision | None = None

    def tick(self, seconds: float = 0.0, analysis: AnalysisRound | None = None) -> Decision:
        self.now += timedelta(seconds=seconds)
        obs = Observations(
            generation=1,
            revisions=dict(self.cluster.revisions),
            requests=self.requests,
            analysis=analysis,
        )
        decision = plan(self.spec, self.status, obs, self.now)
        self.cluster.apply(decision)
        self.status = decision.status
        self.last = decision
        return decision

    def roll_out(self, version: str, ticks: int = 3, **rollout: Any) -> str:
        """Apply a new model version and tick until the canary holds its first weight."""
        self.spec = make_spec(version, **rollout)
        for _ in range(ticks):
            self.tick(1)
        return revision_of(self.spec)

    def settle(self, ticks: int = 5) -> Decision:
        decision = self.tick()
        for _ in range(ticks):
            decision = self.tick()
        return decision


def stable_harness(**rollout: Any) -> Harness:
    h = Harness(make_spec("v1", **rollout))
    h.settle()
    assert h.status.phase is Phase.SUCCEEDED
    return h


def replicas_of(h: Harness) -> dict[str, int]:
    return {rev: state.replicas for rev, state in h.cluster.revisions.items()}


# --- first revision -------------------------------------------------------------


def test_first_revision_is_pending_until_available_then_succeeds() -> None:
    h = Harness(make_spec("v1"))
    rev = revision_of(h.spec)
    h.cluster.unready.add(rev)
    decision = h.tick()
    assert decision.status.phase is Phase.PENDING
    assert decision.targets[0].replicas == 4
    assert decision.targets[0].track == STABLE
    h.cluster.unready.clear()
    h.tick()
    decision = h.tick(1)
    assert decision.status.phase is Phase.SUCCEEDED
    assert decision.status.stable_revision == rev
    assert decision.status.canary_revision is None
    assert any(e.reason == "Available" for e in h.last.events) or h.status.message


def test_first_revision_fails_after_deadline_and_recovers() -> None:
    h = Harness(make_spec("v1", progressDeadlineSeconds=60))
    h.cluster.unready.add(revision_of(h.spec))
    h.tick()
    assert h.tick(61).status.phase is Phase.FAILED
    h.cluster.unready.clear()
    h.tick(1)
    assert h.tick(1).status.phase is Phase.SUCCEEDED


def test_new_spec_while_first_revision_pending_replaces_it() -> None:
    h = Harness(make_spec("v1"))
    first = revision_of(h.spec)
    h.cluster.unready.add(first)
    h.tick()
    h.spec = make_spec("v2")
    decision = h.tick(1)
    assert decision.retire == (first,)
    assert decision.status.stable_revision == revision_of(h.spec)
    assert decision.status.canary_revision is None


# --- canary steps -------------------------------------------------------------------


def test_model_change_starts_a_canary_beside_stable() -> None:
    h = stable_harness()
    stable = h.status.stable_revision
    h.spec = make_spec("v2")
    decision = h.tick(1)
    canary = revision_of(h.spec)
    assert decision.status.phase is Phase.PROGRESSING
    assert decision.status.canary_revision == canary
    assert decision.status.current_step == 0
    assert decision.status.canary_weight == 0
    assert {(t.revision, t.track) for t in decision.targets} == {(stable, STABLE), (canary, CANARY)}
    assert decision.retire == ()


def test_set_weight_waits_for_an_available_canary_before_moving_traffic() -> None:
    h = stable_harness()
    stable = h.status.stable_revision
    h.spec = make_spec("v2")
    canary = revision_of(h.spec)
    h.cluster.unready.add(canary)
    h.tick(1)
    decision = h.tick(1)
    assert decision.status.canary_weight == 0
    assert decision.weights[canary] == 0
    assert replicas_of(h) == {stable: 4, canary: 1}  # stable keeps its pods meanwhile
    h.cluster.unready.clear()
    h.tick(1)
    decision = h.tick(1)
    assert decision.status.canary_weight == 25
    assert replicas_of(h) == {stable: 3, canary: 1}
    assert decision.status.current_step == 1  # on to the timed pause


def test_timed_pause_waits_its_duration_and_stays_progressing() -> None:
    h = stable_harness()
    h.roll_out("v2")
    assert h.status.current_step == 1
    assert h.tick(10).status.current_step == 1
    assert h.status.phase is Phase.PROGRESSING
    decision = h.tick(25)
    assert decision.status.current_step == 2  # pause done; weight 50 needs a second canary pod
    assert decision.status.canary_weight == 25
    decision = h.tick(1)
    assert decision.status.current_step == 3  # weight 50 applied, now the manual pause
    assert decision.status.canary_weight == 50


def test_pause_without_duration_waits_for_promote_of_that_step() -> None:
    h = stable_harness()
    canary = h.roll_out("v2")
    h.tick(31)
    h.tick(1)
    assert h.status.phase is Phase.PAUSED
    assert h.status.current_step == 3
    h.requests = Requests(promote=f"{canary}/1")  # a stale request for another step
    assert h.tick(600).status.phase is Phase.PAUSED  # no deadline on a person's pause
    h.requests = Requests(promote=f"{canary}/3")
    decision = h.tick(1)
    assert decision.status.phase is Phase.PROGRESSING
    assert decision.status.current_step == 4


def test_last_step_promotes_canary_and_retires_old_stable() -> None:
    h = stable_harness()
    old = h.status.stable_revision
    h.spec = make_spec("v2")
    canary = revision_of(h.spec)
    h.requests = Requests(promote=f"{canary}/3")
    for seconds in (1, 1, 1, 31, 1, 1, 1, 1):
        h.tick(seconds)
    assert h.status.phase is Phase.SUCCEEDED
    assert h.status.stable_revision == canary
    assert h.status.stable_version == "v2"
    assert h.status.canary_revision is None
    assert replicas_of(h) == {canary: 4}
    assert old not in h.cluster.revisions
    assert h.cluster.revisions[canary].track == STABLE


def test_full_promote_skips_remaining_steps() -> None:
    h = stable_harness()
    h.spec = make_spec("v2")
    canary = revision_of(h.spec)
    h.tick(1)
    h.requests = Requests(promote=f"{canary}/full")
    h.tick(1)
    h.tick(1)
    assert h.status.phase is Phase.SUCCEEDED
    assert h.status.stable_revision == canary


def test_spec_change_mid_rollout_supersedes_the_canary() -> None:
    h = stable_harness()
    stable = h.status.stable_revision
    first_canary = h.roll_out("v2")
    h.spec = make_spec("v3")
    decision = h.tick(1)
    assert decision.status.canary_revision == revision_of(h.spec)
    assert decision.status.current_step == 0
    assert decision.status.canary_weight == 0
    assert first_canary in decision.retire
    assert any(e.reason == "Superseded" for e in decision.events)
    assert decision.status.stable_revision == stable


def test_reapplying_stable_is_an_instant_rollback() -> None:
    h = stable_harness()
    stable = h.status.stable_revision
    canary = h.roll_out("v2")
    h.spec = make_spec("v1")
    decision = h.tick(1)
    assert decision.status.phase is Phase.SUCCEEDED
    assert decision.status.canary_revision is None
    assert decision.weights == {stable: 100}
    assert decision.retire == (canary,)


def test_abort_rolls_back_and_stays_rolled_back() -> None:
    h = stable_harness()
    stable = h.status.stable_revision
    canary = h.roll_out("v2")
    h.requests = Requests(abort=canary)
    decision = h.tick(1)
    assert decision.status.phase is Phase.ROLLING_BACK
    assert decision.status.canary_weight == 0
    assert decision.weights == {stable: 100, canary: 0}
    assert replicas_of(h) == {stable: 4, canary: 0}  # traffic leaves the canary at once
    assert [e.reason for e in decision.events] == ["RollingBack"]
    decision = h.tick(1)
    assert decision.status.phase is Phase.ROLLED_BACK
    assert [e.reason for e in decision.events] == ["RolledBack"]
    assert h.tick(60).status.phase is Phase.ROLLED_BACK  # no retry of the same revision


def test_rollback_waits_for_stable_to_be_whole_again() -> None:
    h = stable_harness()
    stable = h.status.stable_revision
    h.roll_out("v2")
    h.cluster.unready.add(stable)
    h.cluster.revisions[stable] = RevisionState(3, 3)
    h.requests = Requests(abort=revision_of(h.spec))
    assert h.tick(1).status.phase is Phase.ROLLING_BACK
    assert h.status.canary_weight == 0
    h.cluster.unready.clear()
    h.tick(1)
    assert h.tick(1).status.phase is Phase.ROLLED_BACK


def test_canary_never_available_rolls_back_at_the_deadline() -> None:
    h = stable_harness(progressDeadlineSeconds=120)
    h.spec = make_spec("v2", progressDeadlineSeconds=120)
    h.cluster.unready.add(revision_of(h.spec))
    h.tick(1)
    assert h.tick(60).status.phase is Phase.PROGRESSING
    decision = h.tick(61)
    assert decision.status.phase is Phase.ROLLED_BACK  # stable never lost a pod
    assert "not available" in decision.status.message


# --- analysis gating -------------------------------------------------------------


def _round(verdict: Verdict, failures: int = 0) -> AnalysisRound:
    result = CheckResult(
        name="error-rate", verdict=verdict, value=0.5, stable_value=0.01, samples=200, reason="r"
    )
    failed = result if verdict is Verdict.FAILURE else None
    return AnalysisRound((result,), verdict, failures, failed)


def analysed_harness(deadline: int = 600) -> Harness:
    rollout = {"analysis": {"interval": "10s"}, "progressDeadlineSeconds": deadline}
    h = stable_harness(**rollout)
    h.spec = make_spec("v2", **rollout)
    for _ in range(3):  # start, scale the canary up, see it available and apply weight 25
        h.tick(1)
    assert h.status.canary_weight == 25
    return h


def test_set_weight_step_waits_for_a_successful_analysis() -> None:
    h = analysed_harness()
    assert h.tick(1).status.current_step == 0
    assert h.tick(10, _round(Verdict.INCONCLUSIVE)).status.current_step == 0
    decision = h.tick(10, _round(Verdict.SUCCESS))
    assert decision.status.current_step == 1
    assert decision.status.analysis[0].verdict is Verdict.SUCCESS
    assert decision.status.analysis_rounds == 2


def test_failed_analysis_rolls_back_with_the_values_in_the_message() -> None:
    h = analysed_harness()
    decision = h.tick(10, _round(Verdict.FAILURE, failures=1))
    assert decision.status.phase is Phase.ROLLING_BACK
    assert decision.status.analysis[0].verdict is Verdict.FAILURE
    decision = h.tick(1)
    assert decision.status.phase is Phase.ROLLED_BACK
    assert "error-rate" in decision.status.message
    assert "0.5" in decision.status.message
    assert "0.01" in decision.status.message
    assert decision.status.canary_weight == 0


def test_inconclusive_analysis_holds_until_the_progress_deadline() -> None:
    h = analysed_harness(deadline=60)
    assert h.tick(30, _round(Verdict.INCONCLUSIVE)).status.phase is Phase.PROGRESSING
    decision = h.tick(31, _round(Verdict.INCONCLUSIVE))
    assert decision.status.phase is Phase.ROLLING_BACK
    assert "inconclusive" in decision.status.message


@pytest.mark.parametrize(
    ("last_round", "now", "expected"),
    [
        (None, 0, False),  # traffic just started: no data yet, no round
        (None, 10, True),  # one interval after traffic started
        (0, 5, False),
        (0, 10, True),
        (0, 30, True),
    ],
)
def test_analysis_is_due_every_interval_while_the_canary_has_traffic(
    last_round: int | None, now: int, expected: bool
) -> None:
    h = analysed_harness()
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    status = h.status.model_copy(
        update={
            "traffic_started_at": T0.strftime(stamp),
            "last_analysis_at": (
                None if last_round is None else (T0 + timedelta(seconds=last_round)).strftime(stamp)
            ),
        }
    )
    assert analysis_due(h.spec, status, T0 + timedelta(seconds=now)) is expected


def test_analysis_is_not_due_without_traffic_or_analysis() -> None:
    h = analysed_harness()
    assert not analysis_due(h.spec, h.status.model_copy(update={"canary_weight": 0}), h.now)
    plain = stable_harness()
    plain.spec = make_spec("v2")
    plain.tick(1)
    plain.tick(1)
    assert not analysis_due(plain.spec, plain.status, plain.now)


# --- status bookkeeping ------------------------------------------------------------


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    h = stable_harness()
    ready = next(c for c in h.status.conditions if c.type == "Ready")
    assert ready.status == "True"
    h.tick(100)
    again = next(c for c in h.status.conditions if c.type == "Ready")
    assert again.last_transition_time == ready.last_transition_time


def test_steady_state_decisions_change_nothing() -> None:
    h = stable_harness()
    before = h.status
    decision = h.tick(30)
    assert decision.status == before
    assert decision.events == ()


def test_gateway_router_runs_both_revisions_at_full_size() -> None:
    rollout = {"router": {"type": "GatewayAPI", "parentRefs": [{"name": "gw"}]}}
    h = stable_harness(**rollout)
    stable = h.status.stable_revision
    h.spec = make_spec("v2", **rollout)
    canary = revision_of(h.spec)
    h.tick(1)
    decision = h.tick(1)
    assert replicas_of(h) == {stable: 4, canary: 4}
    assert decision.weights == {stable: 75, canary: 25}


# --- replica split ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weight", "expected"),
    [
        (4, 0, (4, 0)),
        (4, 25, (3, 1)),
        (4, 50, (2, 2)),
        (4, 100, (0, 4)),
        (1, 10, (1, 1)),  # one replica: the canary still gets a pod, stable keeps one
        (10, 10, (9, 1)),
        (3, 50, (1, 2)),
    ],
)
def test_replica_split_for_the_replicas_router(
    total: int, weight: int, expected: tuple[int, int]
) -> None:
    assert replica_split(RouterType.REPLICAS, total, weight) == expected


@given(st.integers(1, 200), st.integers(0, 100))
def test_replica_split_properties(total: int, weight: int) -> None:
    stable, canary = replica_split(RouterType.REPLICAS, total, weight)
    assert 0 <= canary <= total
    assert (canary > 0) == (weight > 0)
    assert (stable == 0) == (weight == 100)
    assert stable + canary <= total + 1


def test_analysis_spec_defaults_are_usable() -> None:
    spec = AnalysisSpec()
    assert [c.key for c in spec.checks] == ["contract", "error-rate", "latency"]


def test_a_person_can_pause_and_resume_a_canary() -> None:
    h = stable_harness()
    canary = h.roll_out("v2")
    h.requests = Requests(pause=canary)
    decision = h.tick(100)  # long past the 30s pause: a person's pause wins
    assert decision.status.phase is Phase.PAUSED
    assert decision.status.current_step == 1
    h.requests = Requests()
    assert h.tick(1).status.current_step == 2


def test_a_stale_request_for_another_canary_is_ignored() -> None:
    h = stable_harness()
    h.roll_out("v2")
    h.requests = Requests(abort="someoldrev", pause="someoldrev", promote="someoldrev/full")
    decision = h.tick(1)
    assert decision.status.phase is Phase.PROGRESSING
    assert decision.status.current_step == 1
