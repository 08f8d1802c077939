"""Assessment: the verdicts of one analysis round become one verdict for the step.

Sits in ``core.analysis`` above the checks and below the planner, which stores
the new consecutive-failure count in status. The rules, in order:

- a round with a failed check counts one more consecutive failure; it is a
  ``Failure`` once that count reaches ``failure_limit``, and until then it
  holds (``Inconclusive``), since a failed round never promotes;
- otherwise any ``Inconclusive`` check holds, and leaves the count as it was
  (missing data is neither a failure nor a pass);
- otherwise every check passed: ``Success``, and the count starts again at 0.

A round without checks has nothing to object to and passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..api import CheckResult, Verdict


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    consecutive_failures: int
    failed: CheckResult | None = None
    held: tuple[CheckResult, ...] = ()

    @property
    def message(self) -> str:
        """One line for status and events."""
        if self.failed is not None:
            f = self.failed
            return (
                f"{f.name} failed ({self.consecutive_failures} in a row): canary {f.value} "
                f"vs stable {f.stable_value} over {f.samples} samples: {f.reason}"
            )
        if self.held:
            return "; ".join(f"{r.name}: {r.reason}" for r in self.held)
        return "all checks passed"


def assess(
    results: Sequence[CheckResult], *, consecutive_failures: int, failure_limit: int
) -> Assessment:
    """Combine one round's check results with the failures counted so far."""
    failed = [r for r in results if r.verdict is Verdict.FAILURE]
    held = tuple(r for r in results if r.verdict is Verdict.INCONCLUSIVE)
    if failed:
        count = consecutive_failures + 1
        verdict = Verdict.FAILURE if count >= failure_limit else Verdict.INCONCLUSIVE
        return Assessment(verdict, count, failed[0], held)
    if held:
        return Assessment(Verdict.INCONCLUSIVE, consecutive_failures, None, held)
    return Assessment(Verdict.SUCCESS, 0)
