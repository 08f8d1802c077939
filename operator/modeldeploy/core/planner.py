"""The rollout planner: one pure function decides every step of a rollout.

``plan(spec, status, observations, now)`` looks at what the ModelDeployment
asks for, what status says happened so far, and what the cluster shows now,
and returns a ``Decision``: the next status, the revisions to keep (with
replicas and track), the revisions to retire, the traffic weights and the
events to record. Handlers execute decisions and persist status; everything
a decision depends on is in status, so a restarted operator resumes exactly
where the last one stopped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from .analysis import Assessment
from .api import (
    CheckResult,
    Condition,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Phase,
    RouterType,
    Verdict,
    parse_duration,
)
from .children import CANARY, STABLE
from .revision import revision_of

ACTIVE_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING, Phase.ROLLING_BACK})
BUSY_REQUEUE_SECONDS = 1.0
IDLE_REQUEUE_SECONDS = 30.0


# --- inputs -------------------------------------------------------------------


@dataclass(frozen=True)
class RevisionState:
    """One revision's Deployment as the cluster reports it."""

    replicas: int
    available: int
    up_to_date: bool = True
    track: str | None = None

    def available_at(self, replicas: int) -> bool:
        return self.up_to_date and self.replicas == replicas and self.available >= replicas


@dataclass(frozen=True)
class Requests:
    """What a person asked for through ``kubectl modeldeploy`` (annotations).

    Each request names the canary revision (and step) it is meant for, so a
    stale request never acts on a later rollout.
    """

    promote: str | None = None  # "<revision>/<step>" or "<revision>/full"
    pause: str | None = None  # "<revision>"
    abort: str | None = None  # "<revision>"


@dataclass(frozen=True)
class AnalysisRound:
    """One round of analysis, already evaluated and assessed by ``core.analysis``."""

    results: tuple[CheckResult, ...]
    verdict: Verdict
    consecutive_failures: int
    failed: CheckResult | None = None


def analysis_round(
    results: tuple[CheckResult, ...], assessment: Assessment, contract_key: str | None
) -> AnalysisRound:
    """One round for the planner. A broken model contract is deterministic, so it
    fails at once instead of waiting for ``failureLimit`` rounds."""
    broken = next(
        (r for r in results if r.name == contract_key and r.verdict is Verdict.FAILURE), None
    )
    if broken is not None:
        return AnalysisRound(results, Verdict.FAILURE, assessment.consecutive_failures, broken)
    return AnalysisRound(
        results, assessment.verdict, assessment.consecutive_failures, assessment.failed
    )


@dataclass(frozen=True)
class Observations:
    generation: int
    revisions: Mapping[str, RevisionState] = field(default_factory=dict)
    requests: Requests = Requests()
    analysis: AnalysisRound | None = None


# --- outputs ------------------------------------------------------------------


@dataclass(frozen=True)
class RevisionTarget:
    revision: str
    replicas: int
    track: str


@dataclass(frozen=True)
class EventNote:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status: ModelDeploymentStatus
    revision: str  # the revision the spec asks for (its children are built from spec)
    targets: tuple[RevisionTarget, ...]
    retire: tuple[str, ...]
    weights: Mapping[str, int]
    events: tuple[EventNote, ...] = ()
    requeue_after: float = IDLE_REQUEUE_SECONDS


def scale_order(
    targets: tuple[RevisionTarget, ...], observed: Mapping[str, RevisionState]
) -> tuple[tuple[RevisionTarget, ...], tuple[RevisionTarget, ...]]:
    """The targets that keep or gain pods, then those that lose pods.

    Executors apply the first group before moving traffic and the second
    after, so a revision never loses pods while it still has its old weight.
    """
    grow = tuple(
        t
        for t in targets
        if t.revision not in observed or t.replicas >= observed[t.revision].replicas
    )
    shrink = tuple(t for t in targets if t not in grow)
    return grow, shrink


# --- helpers --------------------------------------------------------------------


def _with(status: ModelDeploymentStatus, **changes: object) -> ModelDeploymentStatus:
    return status.model_copy(update=changes)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def replica_split(router: RouterType, total: int, weight: int) -> tuple[int, int]:
    """(stable, canary) replicas for a canary weight.

    With the Replicas router the weight *is* the canary's share of pods, so
    its granularity is 1/total; stable keeps a pod until the weight is 100.
    With a traffic router both run at full size and the route splits traffic.
    """
    if router is RouterType.GATEWAY_API:
        return total, total
    canary = math.ceil(total * weight / 100) if weight > 0 else 0
    stable = 0 if weight >= 100 else max(1, total - canary)
    return stable, canary


def current_weight(spec: ModelDeploymentSpec, step: int) -> int:
    """The weight the steps up to and including ``step`` set (0 before any)."""
    weight = 0
    for item in spec.rollout.steps[: step + 1]:
        if item.set_weight is not None:
            weight = item.set_weight
    return weight


def analysis_due(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime) -> bool:
    """Whether a canary is live and an interval has passed since traffic or the last round.

    The first round waits one interval after traffic starts: a round without
    data would only spend part of the false-rollback budget for nothing.
    """
    analysis = spec.rollout.analysis
    if analysis is None or status.canary_revision is None:
        return False
    if status.phase not in (Phase.PROGRESSING, Phase.PAUSED) or status.canary_weight <= 0:
        return False
    if status.canary_revision != revision_of(spec):
        return False
    last = parse_timestamp(status.last_analysis_at) or parse_timestamp(status.traffic_started_at)
    return last is None or (now - last).total_seconds() >= parse_duration(analysis.interval)


def analysis_window_seconds(status: ModelDeploymentStatus, now: datetime) -> float:
    """Seconds since the canary first got traffic: the window analysis compares."""
    since = parse_timestamp(status.traffic_started_at) or now
    return max(1.0, (now - since).total_seconds())


# --- the planner ----------------------------------------------------------------


@dataclass(frozen=True)
class _Tick:
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus
    obs: Observations
    now: datetime
    revision: str

    @property
    def total(self) -> int:
        return self.spec.serving.replicas

    @property
    def router(self) -> RouterType:
        return self.spec.rollout.router.type

    def available(self, revision: str | None, replicas: int) -> bool:
        state = self.obs.revisions.get(revision or "")
        if replicas == 0:
            return True
        return state is not None and state.available_at(replicas)

    def seconds_since(self, text: str | None) -> float:
        moment = parse_timestamp(text)
        return 0.0 if moment is None else (self.now - moment).total_seconds()

    def deadline_passed(self, since: str | None) -> bool:
        return self.seconds_since(since) > self.spec.rollout.progress_deadline_seconds


def plan(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    observations: Observations,
    now: datetime,
) -> Decision:
    """Decide the next move of one ModelDeployment."""
    tick = _Tick(spec, _resumed(status), observations, now, revision_of(spec))
    decision = _route(tick)
    return _finish(tick, decision)


def _route(t: _Tick) -> Decision:
    s = t.status
    if s.stable_revision is None or (
        s.phase in (Phase.PENDING, Phase.FAILED) and not s.canary_revision
    ):
        return _first_revision(t)
    if t.revision == s.stable_revision:
        if s.canary_revision and s.phase in ACTIVE_PHASES:
            return _abandon_canary(t)
        return _steady(t)
    if s.canary_revision != t.revision:
        return _start_canary(t)
    if s.phase is Phase.ROLLED_BACK:
        return _hold_rolled_back(t)
    if s.phase is Phase.ROLLING_BACK:
        return _rolling_back(t)
    if s.phase is Phase.PROMOTING:
        return _promoting(t)
    return _progress(t)


def _decide(
    t: _Tick,
    status: ModelDeploymentStatus,
    targets: list[RevisionTarget],
    weights: Mapping[str, int],
    *,
    events: tuple[EventNote, ...] = (),
    requeue_after: float = BUSY_REQUEUE_SECONDS,
) -> Decision:
    kept = {target.revision for target in targets}
    retire = tuple(sorted(rev for rev in t.obs.revisions if rev not in kept))
    return Decision(
        status=status,
        revision=t.revision,
        targets=tuple(targets),
        retire=retire,
        weights=dict(weights),
        events=events,
        requeue_after=requeue_after,
    )


def _first_revision(t: _Tick) -> Decision:
    """Nothing to compare with: the revision becomes stable once available."""
    s = t.status
    started = s.rollout_started_at if s.stable_revision == t.revision else None
    started = started or timestamp(t.now)
    targets = [RevisionTarget(t.revision, t.total, STABLE)]
    base = _with(
        s,
        stable_revision=t.revision,
        stable_version=t.spec.model.version,
        canary_revision=None,
        canary_version=None,
        canary_weight=0,
        current_step=0,
        rollout_started_at=started,
    )
    if t.available(t.revision, t.total):
        status = _with(base, phase=Phase.SUCCEEDED, message=f"serving {t.spec.model.version}")
        event = EventNote("Normal", "Available", f"revision {t.revision} is available")
        return _decide(
            t,
            status,
            targets,
            {t.revision: 100},
            events=(event,),
            requeue_after=IDLE_REQUEUE_SECONDS,
        )
    if t.deadline_passed(started):
        status = _with(
            base,
            phase=Phase.FAILED,
            message=f"revision {t.revision} not available after "
            f"{t.spec.rollout.progress_deadline_seconds}s",
        )
        events: tuple[EventNote, ...] = ()
        if s.phase is not Phase.FAILED:
            events = (EventNote("Warning", "ProgressDeadlineExceeded", status.message),)
        return _decide(t, status, targets, {t.revision: 100}, events=events)
    status = _with(
        base, phase=Phase.PENDING, message=f"waiting for revision {t.revision} to be available"
    )
    return _decide(t, status, targets, {t.revision: 100})


def _steady(t: _Tick) -> Decision:
    s = t.status
    status = _with(
        s,
        phase=Phase.SUCCEEDED,
        stable_version=t.spec.model.version,
        canary_revision=None,
        canary_version=None,
        canary_weight=0,
        message=s.message if s.phase is Phase.SUCCEEDED else f"serving {t.spec.model.version}",
    )
    targets = [RevisionTarget(t.revision, t.total, STABLE)]
    return _decide(t, status, targets, {t.revision: 100}, requeue_after=IDLE_REQUEUE_SECONDS)


def _abandon_canary(t: _Tick) -> Decision:
    """The spec went back to the stable revision: drop the canary at once."""
    s = t.status
    message = (
        f"spec returned to stable revision {s.stable_revision}; canary {s.canary_revision} retired"
    )
    status = _with(
        s,
        phase=Phase.SUCCEEDED,
        canary_revision=None,
        canary_version=None,
        canary_weight=0,
        message=message,
    )
    targets = [RevisionTarget(t.revision, t.total, STABLE)]
    event = EventNote("Normal", "CanaryAbandoned", message)
    return _decide(t, status, targets, {t.revision: 100}, events=(event,))


def _start_canary(t: _Tick) -> Decision:
    s = t.status
    stable = s.stable_revision or ""
    events: list[EventNote] = []
    if s.canary_revision and s.phase in ACTIVE_PHASES:
        events.append(
            EventNote(
                "Normal",
                "Superseded",
                f"canary {s.canary_revision} superseded by revision {t.revision}",
            )
        )
    now = timestamp(t.now)
    status = _with(
        s,
        phase=Phase.PROGRESSING,
        canary_revision=t.revision,
        canary_version=t.spec.model.version,
        canary_weight=0,
        current_step=0,
        step_started_at=now,
        rollout_started_at=now,
        traffic_started_at=None,
        analysis=[],
        analysis_rounds=0,
        last_analysis_at=None,
        consecutive_failures=0,
        message=f"canary {t.spec.model.version} (revision {t.revision}) started",
    )
    events.append(EventNote("Normal", "CanaryStarted", status.message))
    stable_replicas, canary_replicas = replica_split(t.router, t.total, 0)
    targets = [
        RevisionTarget(stable, stable_replicas, STABLE),
        RevisionTarget(t.revision, canary_replicas, CANARY),
    ]
    return _decide(
        t, status, targets, {stable: 100, t.revision: 0}, events=tuple(events), requeue_after=0.0
    )


def _record_analysis(t: _Tick, status: ModelDeploymentStatus) -> ModelDeploymentStatus:
    round_ = t.obs.analysis
    if round_ is None:
        return status
    return _with(
        status,
        analysis=list(round_.results),
        analysis_rounds=status.analysis_rounds + 1,
        last_analysis_at=timestamp(t.now),
        consecutive_failures=round_.consecutive_failures,
    )


def _failure_reason(failed: CheckResult | None) -> str:
    if failed is None:
        return "analysis failed"
    return (
        f"check {failed.name} failed: canary {failed.value} vs stable {failed.stable_value} "
        f"over {failed.samples} samples ({failed.reason})"
    )


def _progress(t: _Tick) -> Decision:
    """Walk the steps: apply weights, wait pauses, gate on analysis."""
    s = _record_analysis(t, t.status)
    canary = t.revision
    stable = s.stable_revision or ""
    requests = t.obs.requests
    round_ = t.obs.analysis

    if requests.abort == canary:
        return _begin_rollback(t, s, "rollout aborted by a person")
    if round_ is not None and round_.verdict is Verdict.FAILURE:
        return _begin_rollback(t, s, _failure_reason(round_.failed))
    steps = t.spec.rollout.steps
    if requests.promote == f"{canary}/full" or s.current_step >= len(steps):
        return _begin_promotion(t, s)

    index = s.current_step
    step = steps[index]
    weight = current_weight(t.spec, index)
    stable_replicas, canary_replicas = replica_split(t.router, t.total, weight)
    position = f"step {index + 1}/{len(steps)}"

    def hold(status: ModelDeploymentStatus, phase: Phase, message: str, wait: float) -> Decision:
        # Until the canary has taken its share, stable keeps the pods it has.
        keep_stable = stable_replicas
        if status.canary_weight != weight:
            running = t.obs.revisions.get(stable, RevisionState(0, 0)).replicas
            keep_stable = min(t.total, max(stable_replicas, running))
        targets = [
            RevisionTarget(stable, keep_stable, STABLE),
            RevisionTarget(canary, canary_replicas, CANARY),
        ]
        held = _with(status, phase=phase, message=message)
        weights = {stable: 100 - held.canary_weight, canary: held.canary_weight}
        return _decide(t, held, targets, weights, requeue_after=wait)

    if requests.pause == canary:
        return hold(s, Phase.PAUSED, f"{position}: paused by a person", BUSY_REQUEUE_SECONDS)

    if step.set_weight is not None:
        if s.canary_weight != weight:
            if not t.available(canary, canary_replicas):
                if t.deadline_passed(s.step_started_at):
                    return _begin_rollback(
                        t,
                        s,
                        f"canary not available with {canary_replicas} replicas within "
                        f"{t.spec.rollout.progress_deadline_seconds}s",
                    )
                return hold(
                    s,
                    Phase.PROGRESSING,
                    f"{position}: waiting for the canary to be available before weight {weight}",
                    BUSY_REQUEUE_SECONDS,
                )
            s = _with(
                s,
                canary_weight=weight,
                step_started_at=timestamp(t.now),
                traffic_started_at=s.traffic_started_at or timestamp(t.now),
            )
            if t.spec.rollout.analysis is not None:
                return hold(
                    s,
                    Phase.PROGRESSING,
                    f"{position}: weight {weight}, analysing",
                    BUSY_REQUEUE_SECONDS,
                )
        elif t.spec.rollout.analysis is not None and not _analysis_passed(t):
            if t.deadline_passed(s.step_started_at):
                return _begin_rollback(t, s, _inconclusive_reason(t, s))
            return hold(
                s,
                Phase.PROGRESSING,
                f"{position}: weight {weight}, waiting for a conclusive analysis",
                BUSY_REQUEUE_SECONDS,
            )
        return _advance(t, s, f"{position}: weight {weight}")

    assert step.pause is not None  # the schema makes each step one or the other
    if step.pause.duration is None:
        if requests.promote == f"{canary}/{index}":
            return _advance(t, s, f"{position}: promoted by a person")
        return hold(
            s,
            Phase.PAUSED,
            f"{position}: paused until `kubectl modeldeploy promote`",
            BUSY_REQUEUE_SECONDS,
        )
    remaining = parse_duration(step.pause.duration) - t.seconds_since(s.step_started_at)
    if remaining > 0:
        return hold(
            s,
            Phase.PROGRESSING,
            f"{position}: pausing {step.pause.duration} at weight {s.canary_weight}",
            min(remaining, BUSY_REQUEUE_SECONDS * 5),
        )
    return _advance(t, s, f"{position}: pause {step.pause.duration} done")


def _analysis_passed(t: _Tick) -> bool:
    """This tick's analysis round (taken at the current weight) found all healthy."""
    round_ = t.obs.analysis
    return round_ is not None and round_.verdict is Verdict.SUCCESS


def _inconclusive_reason(t: _Tick, s: ModelDeploymentStatus) -> str:
    held = [r for r in s.analysis if r.verdict is Verdict.INCONCLUSIVE]
    detail = "; ".join(f"{r.name}: {r.reason}" for r in held) or "no analysis result yet"
    return (
        f"analysis inconclusive for {t.spec.rollout.progress_deadline_seconds}s "
        f"(progress deadline): {detail}"
    )


def _advance(t: _Tick, s: ModelDeploymentStatus, done: str) -> Decision:
    next_step = s.current_step + 1
    s = _with(s, current_step=next_step, step_started_at=timestamp(t.now))
    event = EventNote("Normal", "StepCompleted", done)
    if next_step >= len(t.spec.rollout.steps):
        decision = _begin_promotion(t, s)
        return replace(decision, events=(event, *decision.events))
    decision = _progress(replace(t, status=s, obs=replace(t.obs, analysis=None)))
    return replace(decision, events=(event, *decision.events))


def _begin_promotion(t: _Tick, s: ModelDeploymentStatus) -> Decision:
    s = _with(
        s,
        phase=Phase.PROMOTING,
        canary_weight=100,
        current_step=len(t.spec.rollout.steps),
        step_started_at=timestamp(t.now),
        traffic_started_at=s.traffic_started_at or timestamp(t.now),
        message=f"promoting canary {t.spec.model.version} (revision {t.revision})",
    )
    event = EventNote("Normal", "Promoting", s.message)
    decision = _promoting(replace(t, status=s))
    return replace(decision, events=(event, *decision.events))


def _promoting(t: _Tick) -> Decision:
    s = t.status
    stable = s.stable_revision or ""
    canary = t.revision
    if t.available(canary, t.total):
        message = f"promoted {t.spec.model.version} (revision {canary}); {stable} retired"
        status = _with(
            s,
            phase=Phase.SUCCEEDED,
            stable_revision=canary,
            stable_version=t.spec.model.version,
            canary_revision=None,
            canary_version=None,
            canary_weight=0,
            message=message,
        )
        targets = [RevisionTarget(canary, t.total, STABLE)]
        event = EventNote("Normal", "Promoted", message)
        return _decide(
            t, status, targets, {canary: 100}, events=(event,), requeue_after=IDLE_REQUEUE_SECONDS
        )
    if t.deadline_passed(s.step_started_at):
        return _begin_rollback(t, s, "canary could not scale to full size within the deadline")
    stable_replicas = t.obs.revisions.get(stable, RevisionState(0, 0)).replicas
    targets = [
        RevisionTarget(stable, stable_replicas, STABLE),
        RevisionTarget(canary, t.total, CANARY),
    ]
    return _decide(t, s, targets, {stable: 0, canary: 100})


def _begin_rollback(t: _Tick, s: ModelDeploymentStatus, reason: str) -> Decision:
    s = _with(
        s,
        phase=Phase.ROLLING_BACK,
        canary_weight=0,
        step_started_at=timestamp(t.now),
        message=f"rolling back canary {t.spec.model.version}: {reason}",
    )
    event = EventNote("Warning", "RollingBack", s.message)
    decision = _rolling_back(replace(t, status=s))
    return replace(decision, events=(event, *decision.events))


def _rollback_targets(t: _Tick) -> list[RevisionTarget]:
    stable = t.status.stable_revision or ""
    return [RevisionTarget(stable, t.total, STABLE), RevisionTarget(t.revision, 0, CANARY)]


def _rolling_back(t: _Tick) -> Decision:
    """Traffic leaves the canary at once; done when stable is back at full size."""
    s = t.status
    stable = s.stable_revision or ""
    weights = {stable: 100, t.revision: 0}
    if t.available(stable, t.total):
        reason = s.message.split(": ", 1)[-1]
        status = _with(s, phase=Phase.ROLLED_BACK, message=f"rolled back: {reason}")
        event = EventNote("Warning", "RolledBack", status.message)
        return _decide(
            t,
            status,
            _rollback_targets(t),
            weights,
            events=(event,),
            requeue_after=IDLE_REQUEUE_SECONDS,
        )
    return _decide(t, s, _rollback_targets(t), weights)


def _hold_rolled_back(t: _Tick) -> Decision:
    """A rolled-back revision stays retired until the spec changes."""
    stable = t.status.stable_revision or ""
    weights = {stable: 100, t.revision: 0}
    return _decide(t, t.status, _rollback_targets(t), weights, requeue_after=IDLE_REQUEUE_SECONDS)


# --- conditions -------------------------------------------------------------------


def _condition(
    previous: list[Condition], type_: str, *, ok: bool, reason: str, message: str, now: str
) -> Condition:
    value = "True" if ok else "False"
    old = next((c for c in previous if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == value else now
    return Condition(
        type=type_, status=value, reason=reason, message=message, last_transition_time=since
    )


def _finish(t: _Tick, decision: Decision) -> Decision:
    s = decision.status
    now = timestamp(t.now)
    stable_target = next((d for d in decision.targets if d.track == STABLE), None)
    ready = stable_target is not None and t.available(
        stable_target.revision, max(1, stable_target.replicas)
    )
    degraded = s.phase in (Phase.ROLLED_BACK, Phase.FAILED)
    conditions = [
        _condition(
            s.conditions,
            "Ready",
            ok=ready,
            reason="StableAvailable" if ready else "StableUnavailable",
            message=f"stable revision {s.stable_revision} "
            + ("available" if ready else "not available"),
            now=now,
        ),
        _condition(
            s.conditions,
            "Progressing",
            ok=s.phase in ACTIVE_PHASES,
            reason=s.phase.value,
            message=s.message,
            now=now,
        ),
        _condition(
            s.conditions,
            "Degraded",
            ok=degraded,
            reason=s.phase.value,
            message=s.message if degraded else "",
            now=now,
        ),
    ]
    status = _with(s, conditions=conditions, observed_generation=t.obs.generation)
    return replace(decision, status=status)


# --- stalled ticks ------------------------------------------------------------------

STALLED = "Stalled"


def stalled(
    status: ModelDeploymentStatus, reason: str, message: str, now: datetime
) -> ModelDeploymentStatus:
    """Status for a tick the cluster stopped (a missing CRD, a name another owner holds).

    Nothing of the decision was done, so everything stays as it was except
    the message and a ``Stalled`` condition (as kstatus reads it) saying why.
    The next tick that gets through drops both: ``_finish`` rebuilds the
    conditions and ``plan`` restores the message.
    """
    condition = _condition(
        status.conditions, STALLED, ok=True, reason=reason, message=message, now=timestamp(now)
    )
    others = [c for c in status.conditions if c.type != STALLED]
    return _with(status, message=message, conditions=[*others, condition])


def _resumed(status: ModelDeploymentStatus) -> ModelDeploymentStatus:
    """Undo ``stalled``: the planner's own last message is kept in ``Progressing``."""
    if not any(c.type == STALLED for c in status.conditions):
        return status
    progressing = next((c for c in status.conditions if c.type == "Progressing"), None)
    return _with(status, message=progressing.message if progressing else "")
