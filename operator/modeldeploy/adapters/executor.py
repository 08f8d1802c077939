"""Carries out a planner ``Decision`` against the cluster.

Order matters for safety: first make sure every revision that keeps or gains
pods has them (scale-ups before scale-downs never drop capacity below what
the planner asked), then move traffic, then shrink revisions that lose pods
and retire old ones (a retired revision leaves the route before its Service
is deleted), and write status last so it only ever claims what has been done.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modeldeploy.core.analysis import AnalysisTarget, Measurement, assess, evaluate
from modeldeploy.core.api import CheckName, ModelDeployment, PrometheusSpec
from modeldeploy.core.children import (
    Owner,
    deployment,
    object_labels,
    revision_name,
    revision_service,
)
from modeldeploy.core.planner import (
    AnalysisRound,
    Decision,
    RevisionState,
    RevisionTarget,
    analysis_due,
    analysis_round,
    analysis_window_seconds,
    scale_order,
)

from .kube import Kube, load_config
from .metadata import MetadataContractProvider
from .prometheus import PrometheusAnalysisProvider
from .routers import router_for

logger = logging.getLogger(__name__)
SERVICE_URL_TEMPLATE = "http://{service}.{namespace}.svc:80"


def owner_of(md: ModelDeployment) -> Owner:
    meta = md.metadata
    return Owner(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])


class Executor:
    def __init__(self, kube: Kube, service_url_template: str = SERVICE_URL_TEMPLATE) -> None:
        self.kube = kube
        self._service_url_template = service_url_template
        self._providers: dict[tuple[str, float], PrometheusAnalysisProvider] = {}
        self._contracts = MetadataContractProvider()

    @classmethod
    def from_environment(cls) -> Executor:
        return cls(
            Kube(load_config(os.environ.get("KUBECONFIG"))),
            os.environ.get("MODELDEPLOY_SERVICE_URL", SERVICE_URL_TEMPLATE),
        )

    async def analyse(self, md: ModelDeployment, now: datetime) -> AnalysisRound | None:
        """Measure and judge every check, if a round is due. Never raises: a provider
        error is an Inconclusive measurement, which holds the step."""
        spec, status = md.spec, md.status
        analysis = spec.rollout.analysis
        if analysis is None or not analysis_due(spec, status, now):
            return None
        owner = owner_of(md)
        canary, stable = status.canary_revision or "", status.stable_revision or ""
        target = AnalysisTarget(
            namespace=owner.namespace,
            name=owner.name,
            revision=canary,
            stable_revision=stable,
            window_seconds=analysis_window_seconds(status, now),
        )
        look = status.analysis_rounds + 1
        results = []
        contract_key = None
        for check in analysis.checks:
            measurement: Measurement
            if check.name is CheckName.CONTRACT:
                contract_key = check.key
                measurement = await self._contracts.contracts(
                    self.service_url(owner, canary),
                    self.service_url(owner, stable),
                    spec.model.name or owner.name,
                )
            else:
                measurement = await self._prometheus(analysis.prometheus).measure(check, target)
            results.append(
                evaluate(check, measurement, min_samples=analysis.min_sample_size, look=look)
            )
        assessment = assess(
            results,
            consecutive_failures=status.consecutive_failures,
            failure_limit=analysis.failure_limit,
        )
        return analysis_round(tuple(results), assessment, contract_key)

    def _prometheus(self, spec: PrometheusSpec) -> PrometheusAnalysisProvider:
        key = (spec.address, spec.timeout_seconds)
        if key not in self._providers:
            self._providers[key] = PrometheusAnalysisProvider.from_spec(spec)
        return self._providers[key]

    def service_url(self, owner: Owner, revision: str) -> str:
        """Where a revision's Service answers (overridable for out-of-cluster runs)."""
        service = revision_name(owner.name, revision)
        return self._service_url_template.format(service=service, namespace=owner.namespace)

    def execute(
        self, md: ModelDeployment, decision: Decision, observed: Mapping[str, RevisionState]
    ) -> None:
        owner = owner_of(md)
        grow, shrink = scale_order(decision.targets, observed)
        for target in grow:
            self._ensure_target(md, owner, decision, target, observed)

        # Traffic moves after growing revisions are scaled and have their
        # Service (the planner only weights available ones), and leaves a
        # revision before it shrinks or its Service is deleted.
        router = router_for(md.spec.rollout.router, self.kube)
        router.reconcile(owner, decision.status.stable_revision or decision.revision)
        router.set_weights(owner, decision.weights)

        for target in shrink:
            self._ensure_target(md, owner, decision, target, observed)
        for revision in decision.retire:
            self.kube.retire_revision(owner.namespace, owner.name, revision)

        new_status = status_document(decision)
        if new_status != status_document_of(md):
            self.kube.patch_status(owner.namespace, owner.name, new_status)

    def _ensure_target(
        self,
        md: ModelDeployment,
        owner: Owner,
        decision: Decision,
        target: RevisionTarget,
        observed: Mapping[str, RevisionState],
    ) -> None:
        self._ensure_revision(md, owner, decision, target, observed.get(target.revision))
        self.kube.ensure_service(revision_service(owner, target.revision, target.track), owner.uid)

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
