"""Simulated canary rollouts for the analysis benchmark.

Sits in ``bench/analysis`` beside ``run.py``. Traffic is Poisson; every request
of a revision independently fails with a 5xx, takes a log-normal time and
predicts one class. Prometheus is modelled as a scrape every ``scrape_s``
seconds (random phase): analysis only sees counts as of the latest scrape.

Two analysers judge the same kind of rollout:

- ``OurAnalysis`` runs the operator's own ``evaluate`` and ``assess`` on
  cumulative counts since the canary first got traffic, every
  ``interval_s`` seconds;
- ``FixedThresholds`` is a Flagger-style rule with Flagger's defaults: every
  60 s it looks at the last minute only and fails the round when the success
  rate is below 99 %, p99 above 500 ms, or (standing in for the custom metric
  a Flagger user would add) PSI above 0.2; one failed round rolls back.

Both walk the default rollout steps the way the planner does: a ``setWeight``
step waits for a passing analysis round at its weight, a pause waits its
duration, any failed assessment rolls back, and a ``setWeight`` step held for
``progressDeadlineSeconds`` rolls back too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from scipy.stats import norm

from modeldeploy.core.analysis import (
    DEFAULT_ALPHA,
    ClassCounts,
    ErrorCounts,
    LatencyHistograms,
    Measurement,
    assess,
    evaluate,
)
from modeldeploy.core.analysis import histograms as hist
from modeldeploy.core.analysis.statistics import psi
from modeldeploy.core.api import (
    AnalysisSpec,
    CheckName,
    CheckSpec,
    RolloutSpec,
    Verdict,
    parse_duration,
)

# The serving bento's request-duration buckets (seconds), "0.001 ... 10".
LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LE = (*LATENCY_BOUNDS, math.inf)
CLASSES = ("0", "1", "2")


@dataclass(frozen=True)
class Behaviour:
    """How one revision's requests go."""

    error_rate: float = 0.001  # 5xx share; 4xx are not simulated, neither rule counts them
    median_s: float = 0.020
    sigma: float = 0.5  # log-normal shape: p99 = median * exp(2.326 * sigma) ~ 64 ms
    classes: tuple[float, ...] = (0.6, 0.3, 0.1)

    @property
    def bucket_probs(self) -> np.ndarray:
        cdf = norm.cdf((np.log(LATENCY_BOUNDS) - math.log(self.median_s)) / self.sigma)
        return np.diff(np.concatenate(([0.0], cdf, [1.0])))

    @property
    def p99(self) -> float:
        return self.median_s * math.exp(norm.ppf(0.99) * self.sigma)


STABLE = Behaviour()


def slower_tail(base: Behaviour, factor: float) -> Behaviour:
    """Same median, p99 ``factor`` times higher."""
    return replace(base, sigma=base.sigma + math.log(factor) / norm.ppf(0.99))


SCENARIOS: dict[str, Behaviour] = {
    "identical": STABLE,
    "100% failing": replace(STABLE, error_rate=1.0),
    "+5% errors": replace(STABLE, error_rate=STABLE.error_rate + 0.05),
    "2x slower (all requests)": replace(STABLE, median_s=2 * STABLE.median_s),
    "2x slower p99 (tail only)": slower_tail(STABLE, 2.0),
    # PSI 0.25, "significant" on the usual scale; the mild one (PSI 0.09) is for information.
    "prediction drift": replace(STABLE, classes=(0.42, 0.3, 0.28)),
    "mild drift (PSI 0.09)": replace(STABLE, classes=(0.5, 0.3, 0.2)),
}


@dataclass
class Counts:
    """Cumulative counts of one revision."""

    requests: float = 0.0
    errors: float = 0.0
    latency: np.ndarray = field(default_factory=lambda: np.zeros(len(LE)))
    classes: np.ndarray = field(default_factory=lambda: np.zeros(len(CLASSES)))

    def copy(self) -> Counts:
        return Counts(self.requests, self.errors, self.latency.copy(), self.classes.copy())

    def minus(self, other: Counts) -> Counts:
        return Counts(
            self.requests - other.requests,
            self.errors - other.errors,
            self.latency - other.latency,
            self.classes - other.classes,
        )

    def buckets(self) -> tuple[tuple[float, float], ...]:
        return tuple(zip(LE, np.cumsum(self.latency).tolist(), strict=True))

    def class_map(self) -> dict[str, float]:
        return dict(zip(CLASSES, self.classes.tolist(), strict=True))


def serve(
    rng: np.random.Generator, counts: Counts, how: Behaviour, rate: float, dur: float
) -> None:
    """Add ``dur`` seconds of Poisson traffic at ``rate`` requests/s to ``counts``."""
    if rate <= 0 or dur <= 0:
        return
    n = int(rng.poisson(rate * dur))
    if n == 0:
        return
    counts.requests += n
    counts.errors += int(rng.binomial(n, how.error_rate))
    counts.latency += rng.multinomial(n, how.bucket_probs)
    counts.classes += rng.multinomial(n, how.classes)


@dataclass(frozen=True)
class Snapshot:
    """What Prometheus holds after one scrape."""

    at: float
    canary: Counts
    stable: Counts


class Analyser(Protocol):
    @property
    def interval_s(self) -> float: ...

    @property
    def first_round_s(self) -> float: ...

    def round(self, now: float, history: list[Snapshot]) -> Verdict: ...


@dataclass
class OurAnalysis:
    """The operator's evaluate/assess on cumulative counts, one look per round."""

    spec: AnalysisSpec
    alpha: float = DEFAULT_ALPHA
    look: int = 0
    consecutive_failures: int = 0

    @property
    def interval_s(self) -> float:
        return parse_duration(self.spec.interval)

    @property
    def first_round_s(self) -> float:
        return 1.0  # the planner analyses at its next requeue (1 s) after setting the weight

    def round(self, now: float, history: list[Snapshot]) -> Verdict:  # noqa: ARG002
        # Cumulative counts since the first traffic: the clock is not needed.
        self.look += 1
        latest = history[-1]
        c, s = latest.canary, latest.stable
        measurements: dict[CheckName, Measurement] = {
            CheckName.ERROR_RATE: ErrorCounts(c.requests, c.errors, s.requests, s.errors),
            CheckName.LATENCY: LatencyHistograms(c.buckets(), s.buckets()),
            CheckName.PREDICTION_DRIFT: ClassCounts.of(c.class_map(), s.class_map()),
        }
        results = [
            evaluate(
                check,
                measurements[check.name],
                min_samples=self.spec.min_sample_size,
                look=self.look,
                alpha=self.alpha,
            )
            for check in self.spec.checks
        ]
        verdict = assess(
            results,
            consecutive_failures=self.consecutive_failures,
            failure_limit=self.spec.failure_limit,
        )
        self.consecutive_failures = verdict.consecutive_failures
        return verdict.verdict


@dataclass
class FixedThresholds:
    """Flagger's defaults: the last interval only, fixed limits, one failure rolls back."""

    interval_s: float = 60.0
    first_round_s: float = 60.0  # Flagger's first check comes one interval after the weight
    min_success_rate: float = 0.99
    max_p99_s: float = 0.5
    max_psi: float = 0.2

    def round(self, now: float, history: list[Snapshot]) -> Verdict:
        latest = history[-1]
        before = next((h for h in reversed(history) if h.at <= now - self.interval_s), None)
        canary = latest.canary if before is None else latest.canary.minus(before.canary)
        stable = latest.stable if before is None else latest.stable.minus(before.stable)
        if canary.requests <= 0:
            return Verdict.FAILURE  # Flagger counts "no values found" as a failed check
        success = 1 - canary.errors / canary.requests
        p99 = hist.quantile(0.99, canary.buckets())
        drift = psi(canary.classes.tolist(), stable.classes.tolist())
        ok = success >= self.min_success_rate and p99 <= self.max_p99_s and drift <= self.max_psi
        return Verdict.SUCCESS if ok else Verdict.FAILURE


@dataclass(frozen=True)
class Outcome:
    rolled_back: bool
    at: float  # seconds from the canary's first traffic to rollback or promotion
    canary_requests: float  # requests the canary served by then (exposure)
    by_deadline: bool = False


@dataclass(frozen=True)
class Traffic:
    rps: float = 20.0
    scrape_s: float = 5.0
    rollout: RolloutSpec = field(default_factory=RolloutSpec)


def simulate(
    rng: np.random.Generator,
    analyser: Analyser,
    canary_how: Behaviour,
    traffic: Traffic,
    stable_how: Behaviour = STABLE,
) -> Outcome:
    """One rollout from the first canary traffic to promotion or rollback."""
    steps = traffic.rollout.steps
    deadline = traffic.rollout.progress_deadline_seconds
    canary, stable = Counts(), Counts()
    history = [Snapshot(0.0, canary.copy(), stable.copy())]
    next_scrape = rng.uniform(0, traffic.scrape_s)
    next_round = analyser.first_round_s
    now, index, weight = 0.0, 0, steps[0].set_weight or 0
    step_started, pause_ends = 0.0, math.inf

    def advance(at: float) -> bool:
        """Move past the current step; True when the rollout is complete."""
        nonlocal index, weight, step_started, pause_ends
        index += 1
        step_started, pause_ends = at, math.inf
        if index >= len(steps):
            return True
        step = steps[index]
        if step.set_weight is not None:
            weight = step.set_weight
        elif step.pause is not None and step.pause.duration is not None:
            pause_ends = at + parse_duration(step.pause.duration)
        return False

    while True:
        until = min(next_scrape, next_round, pause_ends)
        share = weight / 100
        serve(rng, canary, canary_how, traffic.rps * share, until - now)
        serve(rng, stable, stable_how, traffic.rps * (1 - share), until - now)
        now = until
        if now == next_scrape:
            history.append(Snapshot(now, canary.copy(), stable.copy()))
            next_scrape += traffic.scrape_s
        if now == pause_ends and advance(now):
            return Outcome(False, now, canary.requests)
        if now == next_round:
            next_round += analyser.interval_s
            verdict = analyser.round(now, history)
            if verdict is Verdict.FAILURE:
                return Outcome(True, now, canary.requests)
            waiting = steps[index].set_weight is not None
            if waiting and verdict is Verdict.SUCCESS and advance(now):
                return Outcome(False, now, canary.requests)
            if steps[index].set_weight is not None and now - step_started >= deadline:
                return Outcome(True, now, canary.requests, by_deadline=True)


def default_analysis(
    interval: str, min_samples: int, failure_limit: int, drift: bool = True
) -> AnalysisSpec:
    checks = [CheckSpec(name=CheckName.ERROR_RATE), CheckSpec(name=CheckName.LATENCY)]
    if drift:
        checks.append(CheckSpec(name=CheckName.PREDICTION_DRIFT))
    return AnalysisSpec(
        interval=interval,
        min_sample_size=min_samples,
        failure_limit=failure_limit,
        checks=checks,
    )
