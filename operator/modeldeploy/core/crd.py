"""Builds the ModelDeployment CRD from the pydantic API models.

Pydantic emits JSON Schema 2020-12; Kubernetes wants a *structural* OpenAPI
v3.0 schema. The translation inlines ``$ref``, folds ``Optional`` (``anyOf``
with null) into the plain type, turns numeric ``exclusiveMinimum`` into the
v3.0 boolean form and drops keywords the API server refuses.
"""

from __future__ import annotations

from typing import Any

from .api import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
)

_DROPPED_KEYS = {"title", "additionalProperties", "$defs"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"cannot express union in a structural schema: {node}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("default", "absent") is None:
            del rest["default"]
        return _resolve({**branches[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _resolve(sub, defs) for name, sub in value.items()}
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        else:
            out[key] = _resolve(value, defs)
    # Maps (dict[str, str]) keep their value schema; closed objects rely on
    # server-side field validation instead of additionalProperties: false.
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = _resolve(extra, defs)
    return out


def structural_schema(model: type[ModelDeploymentSpec] | type[ModelDeploymentStatus]) -> Any:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _resolve(raw, raw.get("$defs", {}))


def printer_columns() -> list[dict[str, Any]]:
    def column(name: str, type_: str, path: str, priority: int = 0) -> dict[str, Any]:
        col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
        if priority:
            col["priority"] = priority
        return col

    return [
        column("Phase", "string", ".status.phase"),
        column("Stable", "string", ".status.stableRevision"),
        column("Canary", "string", ".status.canaryRevision"),
        column("Weight", "integer", ".status.canaryWeight"),
        column("Step", "integer", ".status.currentStep", priority=1),
        column("Stable-Version", "string", ".status.stableVersion", priority=1),
        column("Canary-Version", "string", ".status.canaryVersion", priority=1),
        column("Message", "string", ".status.message", priority=1),
        column("Age", "date", ".metadata.creationTimestamp"),
    ]


def custom_resource_definition() -> dict[str, Any]:
    """The whole CRD object, ready to serialise as YAML."""
    schema = {
        "type": "object",
        "description": "A model served by onnx-serving and shipped as analysed canaries.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": structural_schema(ModelDeploymentSpec),
            "status": structural_schema(ModelDeploymentStatus),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "modeldeploy"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["all", "modeldeploy"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns(),
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }
