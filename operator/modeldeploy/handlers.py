"""kopf handlers: read the object, call the planner, execute, write status.

Only watch-event handlers are used, plus one scheduler task started at
startup: kopf timers and daemons would put a finalizer on every
ModelDeployment (blocking deletion while the operator is down) and
change-detecting handlers would write kopf's own annotations. This way the
operator writes nothing but status and children.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from modeldeploy.adapters.errors import CannotProceedError
from modeldeploy.adapters.executor import Executor
from modeldeploy.core.api import GROUP, PLURAL, VERSION, ModelDeployment
from modeldeploy.core.children import MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL
from modeldeploy.core.commands import requests_from_annotations
from modeldeploy.core.planner import Observations, plan, stalled

logger = logging.getLogger("modeldeploy")
SCHEDULER_PERIOD_SECONDS = 0.25
ERROR_RETRY_SECONDS = 5.0
STALLED_RETRY_SECONDS = 30.0  # a person has to act first; any change of the object is seen at once

Key = tuple[str, str]


@dataclass
class _Tracked:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    due: float = 0.0  # monotonic time of the next reconcile


@dataclass
class _Runtime:
    executor: Executor | None = None
    tracked: dict[Key, _Tracked] = field(default_factory=dict)
    scheduler: asyncio.Task[None] | None = None


RUNTIME = _Runtime()


def _executor() -> Executor:
    if RUNTIME.executor is None:
        RUNTIME.executor = Executor.from_environment()
    return RUNTIME.executor


def _mark_due(namespace: str, name: str) -> None:
    RUNTIME.tracked.setdefault((namespace, name), _Tracked()).due = 0.0


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 60
    settings.networking.request_timeout = 30
    _executor()
    RUNTIME.scheduler = asyncio.create_task(_schedule_forever())


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    if RUNTIME.scheduler is not None:
        RUNTIME.scheduler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await RUNTIME.scheduler
        RUNTIME.scheduler = None


@kopf.on.event(GROUP, VERSION, PLURAL)
async def modeldeployment_changed(type: str, namespace: str | None, name: str, **_: Any) -> None:
    if namespace is None:
        return
    if type == "DELETED":
        RUNTIME.tracked.pop((namespace, name), None)
        return
    _mark_due(namespace, name)


@kopf.on.event("apps", "v1", "deployments", labels={MANAGED_BY_LABEL: MANAGED_BY})
async def child_changed(namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
    owner = labels.get(NAME_LABEL)
    if namespace is None:
        return
    if owner and (namespace, owner) in RUNTIME.tracked:
        _mark_due(namespace, owner)


async def _schedule_forever() -> None:
    while True:
        now = time.monotonic()
        due = [key for key, item in RUNTIME.tracked.items() if item.due <= now]
        await asyncio.gather(*(reconcile(*key) for key in due))
        await asyncio.sleep(SCHEDULER_PERIOD_SECONDS)


async def reconcile(namespace: str, name: str) -> None:
    """One tick for one ModelDeployment; never raises, reschedules itself."""
    tracked = RUNTIME.tracked.setdefault((namespace, name), _Tracked())
    if tracked.lock.locked():
        return
    async with tracked.lock:
        try:
            wait = await _tick(namespace, name)
        except Exception:  # a tick must not kill the scheduler; retry later
            logger.exception("reconcile of %s/%s failed; retrying", namespace, name)
            wait = ERROR_RETRY_SECONDS
        if (namespace, name) in RUNTIME.tracked:
            tracked.due = time.monotonic() + wait


async def _tick(namespace: str, name: str) -> float:
    executor = _executor()
    body = await asyncio.to_thread(executor.kube.get_model_deployment, namespace, name)
    if body is None:
        RUNTIME.tracked.pop((namespace, name), None)
        return 0.0
    try:
        md = ModelDeployment.model_validate(body)
    except ValidationError as exc:
        # The schema should have refused it; say so in status rather than loop.
        await asyncio.to_thread(
            executor.kube.patch_status, namespace, name, {"message": f"invalid spec: {exc}"}
        )
        return ERROR_RETRY_SECONDS
    revisions = await asyncio.to_thread(executor.kube.list_revisions, namespace, name)
    now = datetime.now(UTC)
    analysis = await executor.analyse(md, now)
    observations = Observations(
        generation=int(body["metadata"].get("generation", 0)),
        revisions=revisions,
        requests=requests_from_annotations(body["metadata"].get("annotations")),
        analysis=analysis,
    )
    decision = plan(md.spec, md.status, observations, now)
    try:
        await asyncio.to_thread(executor.execute, md, decision, revisions)
    except CannotProceedError as exc:
        await _report_stalled(executor, body, md, exc)
        return STALLED_RETRY_SECONDS
    for note in decision.events:
        logger.info("%s/%s %s: %s", namespace, name, note.reason, note.message)
        await asyncio.to_thread(
            executor.kube.post_event, body, note.type, note.reason, note.message
        )
    return decision.requeue_after


async def _report_stalled(
    executor: Executor, body: Mapping[str, Any], md: ModelDeployment, exc: CannotProceedError
) -> None:
    """Say in status and in one Warning event why nothing moves, instead of a log loop."""
    message = str(exc)
    status = stalled(md.status, exc.reason, message, datetime.now(UTC))
    if status == md.status:
        return  # already reported
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    logger.warning("%s/%s cannot proceed (%s): %s", namespace, name, exc.reason, message)
    document = status.model_dump(by_alias=True, mode="json")
    await asyncio.to_thread(executor.kube.patch_status, namespace, name, document)
    await asyncio.to_thread(executor.kube.post_event, body, "Warning", exc.reason, message)
