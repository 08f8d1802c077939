"""API models, revisions and the generated CRD."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeldeploy.core.api import ModelDeploymentSpec, parse_duration
from modeldeploy.core.revision import revision_of
from modeldeploy.crdgen import render

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "charts/modeldeploy/crds/modeldeploy.dev_modeldeployments.yaml"


def test_committed_crd_matches_the_models() -> None:
    assert CRD_FILE.read_text() == render(), "the CRD is stale: run `make crd` and commit it"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("1.5s", 1.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "s", "-5s", "5 s", "1d"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def _spec(**overrides: object) -> ModelDeploymentSpec:
    body: dict[str, object] = {
        "model": {"uri": "https://m.example/a.onnx", "version": "v1"},
        "serving": {"replicas": 2},
    }
    body.update(overrides)
    return ModelDeploymentSpec.model_validate(body)


def test_revision_ignores_replicas_but_not_the_model() -> None:
    base = revision_of(_spec())
    assert revision_of(_spec(serving={"replicas": 9})) == base
    assert revision_of(_spec(model={"uri": "https://m.example/b.onnx", "version": "v1"})) != base
    assert revision_of(_spec(serving={"replicas": 2, "image": "other:1"})) != base
    assert len(base) == 10
    assert base.isalnum()
    assert base == base.lower()
