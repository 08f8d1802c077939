"""What people ask of a rollout through ``kubectl modeldeploy``.

Requests travel as annotations on the ModelDeployment (never its spec, which
Git owns). Each carries the canary revision it was meant for, so a request
left behind never acts on a later rollout.
"""

from __future__ import annotations

from collections.abc import Mapping

from .api import GROUP, ModelDeploymentStatus
from .planner import Requests

PROMOTE_ANNOTATION = f"{GROUP}/promote"
PAUSE_ANNOTATION = f"{GROUP}/pause"
ABORT_ANNOTATION = f"{GROUP}/abort"


class NoCanaryError(ValueError):
    """The command needs a canary in progress and there is none."""


def requests_from_annotations(annotations: Mapping[str, str] | None) -> Requests:
    annotations = annotations or {}
    return Requests(
        promote=annotations.get(PROMOTE_ANNOTATION),
        pause=annotations.get(PAUSE_ANNOTATION),
        abort=annotations.get(ABORT_ANNOTATION),
    )


def _canary(status: ModelDeploymentStatus) -> str:
    if not status.canary_revision:
        raise NoCanaryError(f"no canary in progress (phase {status.phase.value})")
    return status.canary_revision


def promote(status: ModelDeploymentStatus, *, full: bool = False) -> dict[str, str | None]:
    """Continue past the current pause, or with ``full`` skip every remaining step."""
    canary = _canary(status)
    token = f"{canary}/full" if full else f"{canary}/{status.current_step}"
    return {PROMOTE_ANNOTATION: token, PAUSE_ANNOTATION: None}


def pause(status: ModelDeploymentStatus) -> dict[str, str | None]:
    return {PAUSE_ANNOTATION: _canary(status)}


def resume(status: ModelDeploymentStatus) -> dict[str, str | None]:
    _canary(status)
    return {PAUSE_ANNOTATION: None}


def abort(status: ModelDeploymentStatus) -> dict[str, str | None]:
    return {ABORT_ANNOTATION: _canary(status), PAUSE_ANNOTATION: None}
