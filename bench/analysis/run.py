"""``make bench-analysis``: our canary analysis against a fixed-threshold rule.

Simulates rollouts (see ``simulation.py``) and measures, side by side in the
same run and on the same simulated traffic model:

(a) how often a canary identical to stable is rolled back (false rollbacks),
(b) how long after its first traffic a broken canary is rolled back: one that
    fails every request, one with 5 points more 5xx than stable, one twice as
    slow at p99 (every request twice as slow; and, for information, only the
    tail), and one whose predicted classes drift.

Assumptions (printed with the table): 20 requests/s to the ModelDeployment,
the default rollout steps (setWeight 10, pause 30s, setWeight 50, pause 30s,
setWeight 100), so the canary starts with 10% of traffic (2 requests/s);
Prometheus scrapes every 5 s. Our analysis runs every 5 s with
minSampleSize 10, failureLimit 1 and the default limits of error-rate,
latency and prediction-drift (chi-square); "api" is the same method with
api.py's defaults (interval 10s, minSampleSize 100), "fixed" the Flagger-style
rule. Detection times are medians over the runs, with the 95th percentile
beside them; a run that is promoted instead counts as never detected. "canary
reqs" is the median number of requests the canary served before it was rolled
back (or promoted): the exposure each rule accepts.

The last line is machine-readable:
``false_rollback_rate=<x> detect_total_failure_s=<s> detect_5pct_s=<s>
detect_latency_s=<s> detect_drift_s=<s>`` (ours; median detection times, as in the
table; the 95th percentiles are in the table beside them).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modeldeploy.core.analysis import DEFAULT_ALPHA
from modeldeploy.core.api import AnalysisSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simulation import (
    SCENARIOS,
    STABLE,
    Analyser,
    FixedThresholds,
    OurAnalysis,
    Outcome,
    Traffic,
    default_analysis,
    simulate,
)


@dataclass(frozen=True)
class Summary:
    runs: int
    rolled_back: int
    by_deadline: int
    median_s: float
    p95_s: float
    exposure: float  # median canary requests served before rollback (or promotion)

    @property
    def rate(self) -> float:
        return self.rolled_back / self.runs


def summarise(outcomes: list[Outcome], *, detection: bool) -> Summary:
    """Detection: time to rollback, a promotion counting as never. Otherwise: time to promote."""
    if detection:
        times = [o.at if o.rolled_back else math.inf for o in outcomes]
    else:
        times = [o.at for o in outcomes if not o.rolled_back]
    arr = np.array(times or [math.nan])
    return Summary(
        runs=len(outcomes),
        rolled_back=sum(o.rolled_back for o in outcomes),
        by_deadline=sum(o.by_deadline for o in outcomes),
        median_s=float(np.quantile(arr, 0.5, method="inverted_cdf")),
        p95_s=float(np.quantile(arr, 0.95, method="inverted_cdf")),
        exposure=float(np.median([o.canary_requests for o in outcomes])),
    )


def run_many(
    make: Callable[[], Analyser], scenario: str, runs: int, traffic: Traffic, seed: int
) -> list[Outcome]:
    rng = np.random.default_rng(seed)
    return [simulate(rng, make(), SCENARIOS[scenario], traffic) for _ in range(runs)]


def fmt_s(seconds: float) -> str:
    return "never" if math.isinf(seconds) else f"{seconds:.0f}s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=int, default=2000, help="identical-model rollouts")
    parser.add_argument("--runs", type=int, default=300, help="rollouts per broken canary")
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--scrape", type=float, default=5.0, help="Prometheus scrape interval")
    parser.add_argument("--interval", default="5s", help="our analysis interval")
    parser.add_argument("--min-samples", type=int, default=10)
    parser.add_argument("--failure-limit", type=int, default=1)
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="per check")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args(argv)

    started = time.monotonic()
    traffic = Traffic(rps=args.rps, scrape_s=args.scrape)
    spec = default_analysis(args.interval, args.min_samples, args.failure_limit)
    # The same method with api.py's defaults, to show what the recommended ones buy.
    api = AnalysisSpec()
    api_spec = default_analysis(api.interval, api.min_sample_size, api.failure_limit)

    def ours() -> Analyser:
        return OurAnalysis(spec, alpha=args.alpha)

    def ours_api_defaults() -> Analyser:
        return OurAnalysis(api_spec, alpha=args.alpha)

    analysers: dict[str, Callable[[], Analyser]] = {
        "ours": ours,
        "api": ours_api_defaults,
        "fixed": FixedThresholds,
    }

    print(
        f"traffic {args.rps:g} req/s Poisson, canary share = step weight (first step 10%), "
        f"Prometheus scrape {args.scrape:g}s"
    )
    print(
        f"stable: {STABLE.error_rate:.1%} 5xx, latency log-normal median "
        f"{STABLE.median_s * 1000:.0f}ms p99 {STABLE.p99 * 1000:.0f}ms, classes {STABLE.classes}"
    )
    print(
        f"ours: interval {args.interval}, minSampleSize {args.min_samples}, failureLimit "
        f"{args.failure_limit}, alpha {args.alpha:g} per check, checks "
        "error-rate/latency/prediction-drift with default limits"
    )
    print(
        f"api: the same with api.py's defaults (interval {api.interval}, minSampleSize "
        f"{api.min_sample_size}, failureLimit {api.failure_limit})"
    )
    print(
        "fixed: interval 60s over the last minute, success rate >= 99%, p99 <= 500ms, "
        "PSI <= 0.2, one failed round rolls back"
    )
    print()
    header = (
        f"{'scenario':28} {'rule':6} {'rolled back':>12} {'median':>8} {'p95':>8} "
        f"{'canary reqs':>12}"
    )
    print(header)
    print("-" * len(header))

    results: dict[tuple[str, str], Summary] = {}
    for i, scenario in enumerate(SCENARIOS):
        identical = scenario == "identical"
        runs = args.rollouts if identical else args.runs
        for who, make in analysers.items():
            outcomes = run_many(make, scenario, runs, traffic, args.seed + i)
            summary = summarise(outcomes, detection=not identical)
            results[(scenario, who)] = summary
            back = f"{summary.rolled_back}/{summary.runs}"
            note = " (promotion time)" if identical else ""
            if summary.by_deadline:
                note += f" ({summary.by_deadline} by deadline)"
            print(
                f"{scenario:28} {who:6} {back:>12} {fmt_s(summary.median_s):>8} "
                f"{fmt_s(summary.p95_s):>8} {summary.exposure:>12.0f}{note}"
            )

    print()
    print(f"took {time.monotonic() - started:.0f}s")
    ours_of = {name: results[(name, "ours")] for name in SCENARIOS}
    print(
        f"false_rollback_rate={ours_of['identical'].rate:.4f} "
        f"detect_total_failure_s={ours_of['100% failing'].median_s:g} "
        f"detect_5pct_s={ours_of['+5% errors'].median_s:g} "
        f"detect_latency_s={ours_of['2x slower (all requests)'].median_s:g} "
        f"detect_drift_s={ours_of['prediction drift'].median_s:g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
