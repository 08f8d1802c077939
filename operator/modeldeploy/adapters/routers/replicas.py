"""The ``Replicas`` router: no mesh, the share of pods is the share of traffic.

The user-facing Service ``<name>`` selects the pods of every revision; the
planner sizes each revision's Deployment so the canary holds its weight's
share of replicas. Setting weights is therefore a no-op here, and reading
them counts available pods.
"""

from __future__ import annotations

from collections.abc import Mapping

from modeldeploy.core.children import Owner, all_revisions_selector, user_service

from ..kube import Kube


class ReplicasRouter:
    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    def reconcile(self, owner: Owner, stable_revision: str) -> None:
        del stable_revision  # every revision is selected; replicas carry the weight
        self._kube.ensure_service(
            user_service(owner, all_revisions_selector(owner.name)), owner.uid
        )

    def set_weights(self, owner: Owner, weights: Mapping[str, int]) -> None:
        del owner, weights  # the planner's replica split already applies them

    def read_weights(self, owner: Owner) -> dict[str, int]:
        states = self._kube.list_revisions(owner.namespace, owner.name)
        total = sum(state.available for state in states.values())
        if total == 0:
            return {}
        return {rev: round(100 * state.available / total) for rev, state in states.items()}

    def finalize(self, owner: Owner) -> None:
        del owner  # the Service is owned by the ModelDeployment and collected with it
