"""Revision identity: a short hash of everything that changes the running pods.

Replica counts are left out on purpose: scaling is not a new revision, so it
never starts a canary.
"""

from __future__ import annotations

import hashlib
import json

from .api import ModelDeploymentSpec

REVISION_LENGTH = 10


def revision_of(spec: ModelDeploymentSpec) -> str:
    """Stable across processes and dict orderings; lower-case hex, DNS-label safe."""
    pod_shaping = {
        "model": spec.model.model_dump(mode="json", by_alias=True),
        "serving": spec.serving.model_dump(mode="json", by_alias=True, exclude={"replicas"}),
    }
    canonical = json.dumps(pod_shaping, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:REVISION_LENGTH]
