"""Carries out a planner ``Decision`` against the cluster.

Order matters for safety: first make sure every kept revision has its pods
(scale-ups before scale-downs never drop capacity below what the planner
asked), then move traffic, then retire old revisions, and write status last
so it only ever claims what has been done.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modeldeploy.core.api import ModelDeployment
from modeldeploy.core.children import (
    Owner,
    deployment,
    object_labels,
    revision_name,
    revision_service,
)
from modeldeploy.core.planner import AnalysisRound, Decision, RevisionState, RevisionTarget

from .kube import Kube, load_config
from .routers import router_for

logger = logging.getLogger(__name__)


def owner_of(md: ModelDeployment) -> Owner:
    meta = md.metadata
    return Owner(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])


class Executor:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    @classmethod
    def from_environment(cls) -> Executor:
        return cls(Kube(load_config(os.environ.get("KUBECONFIG"))))

    async def analyse(self, md: ModelDeployment, now: datetime) -> AnalysisRound | None:
        """Run the analysis round that is due, if any (wired in by the analysis module)."""
        del md, now
        return None

    def execute(
        self, md: ModelDeployment, decision: Decision, observed: Mapping[str, RevisionState]
    ) -> None:
        owner = owner_of(md)
        for target in decision.targets:
            self._ensure_revision(md, owner, decision, target, observed.get(target.revision))
            self.kube.ensure_service(
                revision_service(owner, target.revision, target.track), owner.uid
            )

        router = router_for(md.spec.rollout.router.type, self.kube)
        router.reconcile(owner, decision.status.stable_revision or decision.revision)
        router.set_weights(owner, decision.weights)

        for revision in decision.retire:
            self.kube.retire_revision(owner.namespace, owner.name, revision)

        new_status = status_document(decision)
        if new_status != status_document_of(md):
            self.kube.patch_status(owner.namespace, owner.name, new_status)

    def _ensure_revision(
        self,
        md: ModelDeployment,
        owner: Owner,
        decision: Decision,
        target: RevisionTarget,
        seen: RevisionState | None,
    ) -> None:
        if seen is not None and (seen.replicas, seen.track) == (target.replicas, target.track):
            return  # nothing to change: skip the write
        if target.revision == decision.revision:
            manifest = deployment(owner, md.spec, target.revision, target.replicas, target.track)
            self.kube.ensure_deployment(manifest, owner.uid)
            return
        # Older revisions cannot be rebuilt from today's spec: only scale and relabel them.
        labels = object_labels(owner.name, target.revision, target.track)
        name = revision_name(owner.name, target.revision)
        if not self.kube.scale_revision(owner.namespace, name, target.replicas, labels):
            logger.warning("revision %s of %s has no Deployment", target.revision, owner.name)


def status_document(decision: Decision) -> dict[str, Any]:
    return decision.status.model_dump(by_alias=True, mode="json")


def status_document_of(md: ModelDeployment) -> dict[str, Any]:
    return md.status.model_dump(by_alias=True, mode="json")
