"""Checks: one measurement in, one verdict out.

Sits in ``core.analysis`` between the measurements (produced by providers in
``adapters``) and the assessment of a round. ``evaluate`` is pure: the same
check, measurement and look always give the same ``CheckResult``. The rules,
one small function each:

- a ``MeasurementError`` is ``Inconclusive`` (missing data is not bad data);
- fewer than ``min_samples`` canary (or stable) samples is ``Inconclusive``;
- within the check's tolerance is ``Success``;
- beyond it, ``Failure`` when the difference is significant at the alpha the
  look may spend (see ``statistics``), ``Inconclusive`` when it is only
  nominally significant, and ``Success`` when it is within sampling noise;
- ``custom`` compares one value with ``min``/``max``; ``contract`` compares
  model interfaces and needs no samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..api import CheckName, CheckResult, CheckSpec, DriftMethod, Verdict
from . import histograms as hist
from .measurements import (
    Buckets,
    ClassCounts,
    Contracts,
    ErrorCounts,
    LatencyHistograms,
    Measurement,
    MeasurementError,
    ModelContract,
    Scalar,
    ScoreHistograms,
    TensorSpec,
)
from .statistics import (
    binomial_greater,
    chi_square_homogeneity,
    fisher_greater,
    psi,
    psi_noise,
    spent_alpha,
)

# Each comparative check fails an identical canary with probability at most
# DEFAULT_ALPHA over a whole rollout; three of them stay under 1%.
DEFAULT_ALPHA = 0.003
DEFAULT_MAX_INCREASE = 0.01
DEFAULT_QUANTILE = 0.99
DEFAULT_MAX_RATIO = 1.5
DEFAULT_MAX_PSI = 0.2
# Beyond its tolerance but not yet significant, a canary holds only when a single
# fixed-sample test would call the difference real; weaker evidence is noise.
SUSPICION_LEVEL = 0.05
DYNAMIC = -1


@dataclass(frozen=True)
class _Look:
    """What every rule needs besides the check and its measurement."""

    check: CheckSpec
    min_samples: int
    look: int
    alpha: float

    @property
    def spend(self) -> float:
        return spent_alpha(self.alpha, self.look)

    def result(
        self,
        verdict: Verdict,
        reason: str,
        *,
        value: float | None = None,
        stable_value: float | None = None,
        samples: float = 0,
    ) -> CheckResult:
        return CheckResult(
            name=self.check.key,
            verdict=verdict,
            value=_finite(value),
            stable_value=_finite(stable_value),
            samples=int(samples),
            reason=reason,
        )

    def too_few(self, canary: float, stable: float, unit: str) -> CheckResult | None:
        """Inconclusive while either revision has fewer than ``min_samples`` (and never 0)."""
        needed = max(1, self.min_samples)
        for who, count in (("canary", canary), ("stable", stable)):
            if count < needed:
                return self.result(
                    Verdict.INCONCLUSIVE,
                    f"{who} has {int(count)} of the {needed} {unit} needed",
                    samples=canary,
                )
        return None

    def significance(self, p_value: float) -> str:
        return f"p={p_value:.2g}, {self.spend:.2g} needed at look {self.look}"

    def weigh(self, p_value: float, over: str) -> tuple[Verdict, str]:
        """The verdict on a canary beyond its tolerance, by the strength of the evidence."""
        evidence = self.significance(p_value)
        if p_value <= self.spend:
            return Verdict.FAILURE, f"{over}, significantly ({evidence})"
        if p_value <= SUSPICION_LEVEL:
            return Verdict.INCONCLUSIVE, f"{over}, not yet significantly ({evidence}); holding"
        return Verdict.SUCCESS, f"{over}, within sampling noise ({evidence})"


def _finite(value: float | None) -> float | None:
    """Status holds JSON numbers: no NaN or infinity, and six digits are plenty."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def evaluate(
    check: CheckSpec,
    measurement: Measurement,
    *,
    min_samples: int,
    look: int,
    alpha: float = DEFAULT_ALPHA,
) -> CheckResult:
    """The verdict of ``check`` on ``measurement`` at analysis round ``look`` (1-based)."""
    ctx = _Look(check, min_samples, max(1, look), alpha)
    if isinstance(measurement, MeasurementError):
        return ctx.result(Verdict.INCONCLUSIVE, measurement.reason)
    rule = _RULES[check.name]
    result = rule(ctx, measurement)
    if result is None:
        return ctx.result(
            Verdict.INCONCLUSIVE,
            f"a {type(measurement).__name__} measurement cannot be judged by a "
            f"{check.name.value} check",
        )
    return result


# --- error-rate ---------------------------------------------------------------


def _error_rate(ctx: _Look, m: Measurement) -> CheckResult | None:
    if not isinstance(m, ErrorCounts):
        return None
    counts = [m.canary_total, m.canary_errors, m.stable_total, m.stable_errors]
    if any(not math.isfinite(x) or x < 0 for x in counts):
        return ctx.result(Verdict.INCONCLUSIVE, f"invalid request counts {counts}")
    # increase() extrapolates, so counts arrive as floats; the tests need whole requests.
    c_total, c_err, s_total, s_err = (round(x) for x in counts)
    c_err, s_err = min(c_err, c_total), min(s_err, s_total)
    if held := ctx.too_few(c_total, s_total, "requests"):
        return held
    c_rate, s_rate = c_err / c_total, s_err / s_total
    limit = _or(ctx.check.max_increase, DEFAULT_MAX_INCREASE)
    shown = f"5xx {c_rate:.2%} vs stable {s_rate:.2%}"

    def result(verdict: Verdict, reason: str) -> CheckResult:
        return ctx.result(verdict, reason, value=c_rate, stable_value=s_rate, samples=c_total)

    if c_rate - s_rate <= limit:
        return result(Verdict.SUCCESS, f"{shown}, within +{limit:.2%}")
    p_value = fisher_greater(c_err, c_total, s_err, s_total)
    return result(*ctx.weigh(p_value, f"{shown}: more than +{limit:.2%}"))


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


# --- latency ------------------------------------------------------------------


def _latency(ctx: _Look, m: Measurement) -> CheckResult | None:
    if not isinstance(m, LatencyHistograms):
        return None
    canary, stable = hist.normalize(m.canary_buckets), hist.normalize(m.stable_buckets)
    if canary is None or stable is None:
        return ctx.result(Verdict.INCONCLUSIVE, "latency histogram missing or malformed")
    canary, stable = hist.common_bounds(canary, stable)
    if len(canary) < 2:
        return ctx.result(Verdict.INCONCLUSIVE, "canary and stable share no latency buckets")
    n_canary, n_stable = hist.total(canary), hist.total(stable)
    if held := ctx.too_few(n_canary, n_stable, "requests"):
        return held
    q = _or(ctx.check.quantile, DEFAULT_QUANTILE)
    q_canary, q_stable = hist.quantile(q, canary), hist.quantile(q, stable)
    max_ratio = _or(ctx.check.max_ratio, DEFAULT_MAX_RATIO)
    ceiling = ctx.check.max_seconds
    shown = f"p{_percent(q)} {q_canary * 1000:.1f}ms vs stable {q_stable * 1000:.1f}ms"

    def result(verdict: Verdict, reason: str) -> CheckResult:
        return ctx.result(verdict, reason, value=q_canary, stable_value=q_stable, samples=n_canary)

    over_ratio = q_canary > max_ratio * q_stable
    over_ceiling = ceiling is not None and q_canary > ceiling
    if not over_ratio and not over_ceiling:
        limits = f"within {max_ratio:g}x" + (f" and {ceiling:g}s" if ceiling else "")
        return result(Verdict.SUCCESS, f"{shown}, {limits}")
    # Each limit has its own test; the stronger evidence decides.
    evidence: list[tuple[float, str]] = []
    if over_ratio:
        evidence.append((_slower_than_stable(canary, stable, q), f"more than {max_ratio:g}x"))
    if ceiling is not None and over_ceiling:
        evidence.append((_over_ceiling(canary, q, ceiling), f"above {ceiling:g}s"))
    p_value, over = min(evidence)
    return result(*ctx.weigh(p_value, f"{shown}: {over}"))


def _percent(q: float) -> str:
    return f"{q * 100:g}"


def _slower_than_stable(canary: Buckets, stable: Buckets, q: float) -> float:
    """Bonferroni over two Fisher tests: share above the pooled median's and q's bounds."""
    both = hist.pooled(canary, stable)
    p_values = []
    for level in (0.5, q):
        bound = hist.bound_at_or_above(hist.quantile(level, both), both)
        if bound is None:
            continue
        p_values.append(
            fisher_greater(
                round(hist.count_above(bound, canary)),
                round(hist.total(canary)),
                round(hist.count_above(bound, stable)),
                round(hist.total(stable)),
            )
        )
    return min(1.0, 2 * min(p_values)) if p_values else 1.0


def _over_ceiling(canary: Buckets, q: float, ceiling: float) -> float:
    """The canary's share above the ceiling (rounded up to a bound) exceeds ``1 - q``."""
    bound = hist.bound_at_or_above(ceiling, canary)
    if bound is None:
        return 1.0
    return binomial_greater(
        round(hist.count_above(bound, canary)), round(hist.total(canary)), 1 - q
    )


# --- prediction-drift ---------------------------------------------------------


@dataclass(frozen=True)
class _Categories:
    labels: tuple[str, ...]
    canary: tuple[float, ...]
    stable: tuple[float, ...]


def _categories(m: Measurement) -> _Categories | MeasurementError | None:
    if isinstance(m, ClassCounts):
        canary, stable = dict(m.canary), dict(m.stable)
        labels = tuple(sorted(set(canary) | set(stable)))
        return _Categories(
            labels,
            tuple(canary.get(x, 0.0) for x in labels),
            tuple(stable.get(x, 0.0) for x in labels),
        )
    if isinstance(m, ScoreHistograms):
        canary_b, stable_b = hist.normalize(m.canary_buckets), hist.normalize(m.stable_buckets)
        if canary_b is None or stable_b is None:
            return MeasurementError("score histogram missing or malformed")
        canary_b, stable_b = hist.common_bounds(canary_b, stable_b)
        return _Categories(
            tuple(f"le={le:g}" for le, _ in canary_b),
            hist.counts_per_bucket(canary_b),
            hist.counts_per_bucket(stable_b),
        )
    return None


def _drift(ctx: _Look, m: Measurement) -> CheckResult | None:
    cats = _categories(m)
    if cats is None:
        return None
    if isinstance(cats, MeasurementError):
        return ctx.result(Verdict.INCONCLUSIVE, cats.reason)
    if any(not math.isfinite(x) or x < 0 for x in (*cats.canary, *cats.stable)):
        return ctx.result(Verdict.INCONCLUSIVE, "invalid prediction counts")
    n_canary, n_stable = sum(cats.canary), sum(cats.stable)
    if held := ctx.too_few(n_canary, n_stable, "predictions"):
        return held
    canary_share = [c / n_canary for c in cats.canary]
    stable_share = [s / n_stable for s in cats.stable]
    # value/stable_value: the category whose share moved most, so status reads naturally.
    moved = max(range(len(cats.labels)), key=lambda i: abs(canary_share[i] - stable_share[i]))
    test = chi_square_homogeneity(cats.canary, cats.stable)
    used = sum(1 for c, s in zip(cats.canary, cats.stable, strict=True) if c + s > 0)
    drift_psi = max(0.0, psi(cats.canary, cats.stable) - psi_noise(used, n_canary, n_stable))
    shown = (
        f"{cats.labels[moved]} is {canary_share[moved]:.1%} of canary predictions vs "
        f"{stable_share[moved]:.1%} of stable's, PSI {drift_psi:.3f} beyond noise"
    )

    def result(verdict: Verdict, reason: str) -> CheckResult:
        return ctx.result(
            verdict,
            reason,
            value=canary_share[moved],
            stable_value=stable_share[moved],
            samples=n_canary,
        )

    if (ctx.check.method or DriftMethod.CHI_SQUARE) is DriftMethod.PSI:
        limit = _or(ctx.check.max_psi, DEFAULT_MAX_PSI)
        if drift_psi <= limit:
            return result(Verdict.SUCCESS, f"{shown}, within {limit:g}")
        return result(*ctx.weigh(test.p_value, f"{shown}, over {limit:g}"))
    # chi-square alone: any real difference is drift, and the test decides by itself.
    evidence = f"chi-square {ctx.significance(test.p_value)}"
    if test.p_value <= ctx.spend:
        return result(Verdict.FAILURE, f"{shown}: distributions differ ({evidence})")
    return result(Verdict.SUCCESS, f"{shown}: no significant drift ({evidence})")


# --- custom -------------------------------------------------------------------


def _custom(ctx: _Look, m: Measurement) -> CheckResult | None:
    if not isinstance(m, Scalar):
        return None
    if not math.isfinite(m.value):
        return ctx.result(Verdict.INCONCLUSIVE, f"query returned {m.value}")
    if m.samples < ctx.min_samples:
        return ctx.result(
            Verdict.INCONCLUSIVE,
            f"canary has {int(m.samples)} of the {ctx.min_samples} requests needed",
            value=m.value,
            samples=m.samples,
        )
    low, high = ctx.check.min, ctx.check.max
    if low is not None and m.value < low:
        verdict, reason = Verdict.FAILURE, f"{m.value:g} is below the minimum {low:g}"
    elif high is not None and m.value > high:
        verdict, reason = Verdict.FAILURE, f"{m.value:g} is above the maximum {high:g}"
    else:
        verdict, reason = Verdict.SUCCESS, f"{m.value:g} is within [{low}, {high}]"
    return ctx.result(verdict, reason, value=m.value, samples=m.samples)


# --- contract -----------------------------------------------------------------


def _contract(ctx: _Look, m: Measurement) -> CheckResult | None:
    if not isinstance(m, Contracts):
        return None
    problems = contract_mismatches(m.canary, m.stable)
    if problems:
        return ctx.result(Verdict.FAILURE, "model contract differs: " + "; ".join(problems))
    return ctx.result(Verdict.SUCCESS, "inputs and outputs match stable's")


def contract_mismatches(canary: ModelContract, stable: ModelContract) -> list[str]:
    """What would break a client of stable if it were sent to the canary.

    The canary must accept every input stable accepts (same names, datatypes,
    and each dimension equal or dynamic on the canary side) and produce every
    output stable produces in a shape stable's clients accept (extra outputs
    are harmless; extra inputs are not, since clients do not send them).
    """
    problems: list[str] = []
    canary_in = {t.name: t for t in canary.inputs}
    stable_in = {t.name: t for t in stable.inputs}
    for name in sorted(set(canary_in) - set(stable_in)):
        problems.append(f"input {name!r} is new (stable's clients do not send it)")
    for name in sorted(stable_in):
        if name not in canary_in:
            problems.append(f"input {name!r} is gone")
        else:
            problems += _tensor_mismatch("input", canary_in[name], stable_in[name], accepts=True)
    canary_out = {t.name: t for t in canary.outputs}
    for spec in stable.outputs:
        if spec.name not in canary_out:
            problems.append(f"output {spec.name!r} is gone")
        else:
            problems += _tensor_mismatch("output", canary_out[spec.name], spec, accepts=False)
    return problems


def _tensor_mismatch(
    kind: str, canary: TensorSpec, stable: TensorSpec, *, accepts: bool
) -> list[str]:
    where = f"{kind} {stable.name!r}"
    if canary.datatype.upper() != stable.datatype.upper():
        return [f"{where} is {canary.datatype}, stable's is {stable.datatype}"]
    if len(canary.shape) != len(stable.shape) or not all(
        _dim_fits(c, s, accepts=accepts) for c, s in zip(canary.shape, stable.shape, strict=True)
    ):
        return [f"{where} has shape {list(canary.shape)}, stable's is {list(stable.shape)}"]
    return []


def _dim_fits(canary: int, stable: int, *, accepts: bool) -> bool:
    # Inputs: the canary must take whatever stable took, so only its side may be dynamic.
    # Outputs: stable's clients must take what the canary gives, so only stable's side.
    flexible = canary if accepts else stable
    return canary == stable or flexible == DYNAMIC


_RULES: dict[CheckName, Callable[[_Look, Measurement], CheckResult | None]] = {
    CheckName.ERROR_RATE: _error_rate,
    CheckName.LATENCY: _latency,
    CheckName.PREDICTION_DRIFT: _drift,
    CheckName.CUSTOM: _custom,
    CheckName.CONTRACT: _contract,
}
