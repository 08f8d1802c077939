"""The named PromQL templates and the placeholder renderer."""

from __future__ import annotations

import pytest

from modeldeploy.adapters.queries import TEMPLATES, Query, TemplateError, builtin, render, window
from modeldeploy.core.analysis import AnalysisTarget

TARGET = AnalysisTarget("shop", "iris", "abc123", "def456", 42.3)
CONTRACT = ('namespace="shop"', 'modeldeployment="iris"')


@pytest.mark.parametrize("query", list(Query))
def test_every_builtin_selects_by_the_label_contract_over_the_window(query: Query) -> None:
    promql = builtin(query, TARGET)
    assert all(label in promql for label in CONTRACT)
    assert "increase(" in promql
    assert promql.endswith("[43s]))")
    assert "{{" not in promql


def test_comparative_queries_select_both_revisions_and_split_by_revision() -> None:
    for query in (Query.REQUESTS_BY_CODE, Query.LATENCY_BUCKETS, Query.PREDICTIONS_BY_CLASS):
        promql = builtin(query, TARGET)
        assert 'revision=~"abc123|def456"' in promql
        assert promql.startswith("sum by (revision, ")


def test_canary_requests_selects_only_the_canary() -> None:
    assert 'revision="abc123"' in builtin(Query.CANARY_REQUESTS, TARGET)


def test_every_query_has_a_template() -> None:
    assert set(TEMPLATES) == set(Query)


def test_render_fills_every_placeholder() -> None:
    template = "{{namespace}} {{name}} {{revision}} {{stableRevision}} {{interval}} {{ name }}"
    assert render(template, TARGET) == "shop iris abc123 def456 43s iris"


def test_render_refuses_an_unknown_placeholder() -> None:
    with pytest.raises(TemplateError, match=r"unknown placeholder \{\{revison\}\}"):
        render("x{{revison}}", TARGET)


@pytest.mark.parametrize(
    "target",
    [
        AnalysisTarget('sh"op', "iris", "abc", "def", 10),
        AnalysisTarget("shop", "iris", "a.c", "def", 10),
        AnalysisTarget("shop", "iris", "abc", "d|f", 10),
    ],
)
def test_render_refuses_values_that_would_break_the_query(target: AnalysisTarget) -> None:
    with pytest.raises(TemplateError):
        render("{{namespace}}", target)


@pytest.mark.parametrize(("seconds", "expected"), [(0.2, "1s"), (1, "1s"), (59.01, "60s")])
def test_window_is_whole_seconds_rounded_up(seconds: float, expected: str) -> None:
    assert window(seconds) == expected
