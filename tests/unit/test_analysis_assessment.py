"""``assess``: a round of check results becomes one verdict; one test per rule."""

from __future__ import annotations

import pytest

from modeldeploy.core.analysis import assess
from modeldeploy.core.api import CheckResult, Verdict

S, F, HOLD = Verdict.SUCCESS, Verdict.FAILURE, Verdict.INCONCLUSIVE


def results(*verdicts: Verdict) -> list[CheckResult]:
    return [
        CheckResult(name=f"check-{i}", verdict=v, value=0.5, stable_value=0.1, samples=100)
        for i, v in enumerate(verdicts)
    ]


@pytest.mark.parametrize(
    ("verdicts", "before", "limit", "verdict", "after"),
    [
        pytest.param((S, S), 0, 1, S, 0, id="all-pass"),
        pytest.param((S, S), 2, 3, S, 0, id="a-pass-resets-the-count"),
        pytest.param((S, F), 0, 1, F, 1, id="one-failure-at-limit-1"),
        pytest.param((S, F), 0, 2, HOLD, 1, id="first-failure-below-limit-holds"),
        pytest.param((F, S), 1, 2, F, 2, id="second-consecutive-failure-at-limit-2"),
        pytest.param((F, F), 0, 2, HOLD, 1, id="two-failed-checks-are-one-failed-round"),
        pytest.param((S, HOLD), 0, 1, HOLD, 0, id="inconclusive-holds"),
        pytest.param((S, HOLD), 1, 2, HOLD, 1, id="inconclusive-keeps-the-count"),
        pytest.param((HOLD, F), 0, 1, F, 1, id="failure-beats-inconclusive"),
        pytest.param((), 0, 1, S, 0, id="no-checks-pass"),
    ],
)
def test_assess_rules(
    verdicts: tuple[Verdict, ...], before: int, limit: int, verdict: Verdict, after: int
) -> None:
    got = assess(results(*verdicts), consecutive_failures=before, failure_limit=limit)
    assert (got.verdict, got.consecutive_failures) == (verdict, after)


def test_assess_names_the_first_failed_check() -> None:
    got = assess(results(S, F, F), consecutive_failures=0, failure_limit=1)
    assert got.failed is not None
    assert got.failed.name == "check-1"
    assert got.message.startswith("check-1 failed (1 in a row): canary 0.5 vs stable 0.1")


def test_assess_lists_the_held_checks_in_its_message() -> None:
    got = assess(results(HOLD, S, HOLD), consecutive_failures=0, failure_limit=1)
    assert [r.name for r in got.held] == ["check-0", "check-2"]
    assert got.failed is None
    assert got.message.count("check-") == 2


def test_assess_success_message() -> None:
    assert assess(results(S), consecutive_failures=0, failure_limit=1).message == (
        "all checks passed"
    )
