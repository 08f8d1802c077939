"""kubectl modeldeploy requests: annotations that name the rollout they are for."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modeldeploy.core import commands
from modeldeploy.core.api import ModelDeploymentStatus, Phase
from modeldeploy.core.planner import Requests

CANARY = ModelDeploymentStatus(
    phase=Phase.PAUSED, stable_revision="aaa", canary_revision="bbb", current_step=3
)
Command = Callable[[ModelDeploymentStatus], dict[str, str | None]]
STABLE_ONLY = ModelDeploymentStatus(phase=Phase.SUCCEEDED, stable_revision="aaa")


def test_promote_names_the_canary_and_the_step() -> None:
    assert commands.promote(CANARY) == {
        commands.PROMOTE_ANNOTATION: "bbb/3",
        commands.PAUSE_ANNOTATION: None,
    }
    assert commands.promote(CANARY, full=True)[commands.PROMOTE_ANNOTATION] == "bbb/full"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (commands.pause, {commands.PAUSE_ANNOTATION: "bbb"}),
        (commands.resume, {commands.PAUSE_ANNOTATION: None}),
        (commands.abort, {commands.ABORT_ANNOTATION: "bbb", commands.PAUSE_ANNOTATION: None}),
    ],
)
def test_each_command_sets_its_annotation(command: Command, expected: dict[str, str]) -> None:
    assert command(CANARY) == expected


@pytest.mark.parametrize("command", [commands.pause, commands.resume, commands.abort])
def test_commands_need_a_canary(command: Command) -> None:
    with pytest.raises(commands.NoCanaryError, match="no canary in progress"):
        command(STABLE_ONLY)


def test_requests_are_read_back_from_annotations() -> None:
    annotations = {
        commands.PROMOTE_ANNOTATION: "bbb/3",
        commands.PAUSE_ANNOTATION: "bbb",
        "unrelated": "x",
    }
    assert commands.requests_from_annotations(annotations) == Requests(
        promote="bbb/3", pause="bbb", abort=None
    )
    assert commands.requests_from_annotations(None) == Requests()
