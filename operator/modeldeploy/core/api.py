"""The ModelDeployment API, ``modeldeploy.dev/v1alpha1``, as pydantic models.

This module is the one source of truth for the schema: ``modeldeploy.crdgen``
turns these models into the CRD (with the CEL rules declared here), and the
operator parses objects it reads from the API server with the same models.
Python names are snake_case; the wire names are camelCase aliases.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "modeldeploy.dev"
VERSION = "v1alpha1"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ("mdep",)

DEFAULT_SERVING_IMAGE = "ghcr.io/modeldeploy/onnx-serving:0.1.0"

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h))+$"
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One ``x-kubernetes-validations`` entry: a CEL rule the API server enforces."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration such as ``30s``, ``1m30s`` or ``250ms``."""
    if not re.fullmatch(_DURATION_PATTERN, text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h30m)")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_RE.findall(text))


Duration = Annotated[
    str,
    Field(
        pattern=_DURATION_PATTERN,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "duration(self) > duration('0s')",
                    "must be a positive duration such as 30s, 5m or 1h",
                )
            ]
        },
    ),
]


# A DNS name, optionally with one leading wildcard label, as Gateway API accepts.
Hostname = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    ),
]


class Phase(StrEnum):
    """Where a ModelDeployment's rollout stands (``status.phase``).

    - ``Pending``: accepted, the first revision is not available yet.
    - ``Progressing``: a canary walks the steps (a timed pause included).
    - ``Paused``: waiting for a person (a pause step without duration, or
      ``kubectl modeldeploy pause``).
    - ``Promoting``: the canary takes all traffic and becomes stable.
    - ``Succeeded``: one stable revision serves everything.
    - ``RollingBack``: traffic returns to stable after a failure or an abort.
    - ``RolledBack``: the canary was retired; stable serves everything.
    - ``Failed``: nothing can serve (e.g. the first revision never became available).
    """

    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTING = "Promoting"
    SUCCEEDED = "Succeeded"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


class RouterType(StrEnum):
    """How traffic is split between the stable and the canary revision."""

    GATEWAY_API = "GatewayAPI"
    REPLICAS = "Replicas"


class CheckName(StrEnum):
    """The built-in analysis checks."""

    ERROR_RATE = "error-rate"
    LATENCY = "latency"
    PREDICTION_DRIFT = "prediction-drift"
    CUSTOM = "custom"
    CONTRACT = "contract"


class DriftMethod(StrEnum):
    CHI_SQUARE = "chi-square"
    PSI = "psi"


class Verdict(StrEnum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    INCONCLUSIVE = "Inconclusive"


class ApiModel(BaseModel):
    """Base for every API object: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )


# --- spec -------------------------------------------------------------------


class ModelSource(ApiModel):
    """Where the ONNX model comes from and how to recognise it."""

    uri: str = Field(
        pattern=r"^(https?|s3|file)://\S+$",
        max_length=2048,
        description="http(s)://, s3:// or file:// (a mounted volume) URI of the ONNX file.",
    )
    sha256: str | None = Field(
        default=None,
        pattern=r"^[a-f0-9]{64}$",
        description="Lower-case hex SHA-256 of the file; verified before serving.",
    )
    version: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$",
        description="A label people read (e.g. v2); also the metrics' model_version.",
    )
    name: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$",
        description="Model name on the inference API; defaults to the ModelDeployment name.",
    )


class Resources(ApiModel):
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class ServingSpec(ApiModel):
    """How each revision's pods run the onnx-serving bento."""

    image: str = Field(default=DEFAULT_SERVING_IMAGE, min_length=1, max_length=512)
    replicas: int = Field(default=1, ge=1, le=1000)
    resources: Resources = Field(default_factory=Resources)
    max_request_bytes: int = Field(default=1_048_576, ge=1024, le=268_435_456)
    max_batch_rows: int = Field(default=1024, ge=1, le=1_000_000)
    request_timeout_seconds: int = Field(
        default=10,
        ge=1,
        le=3600,
        description="Requests whose response has not started by then get a 504.",
    )


class Pause(ApiModel):
    duration: Duration | None = Field(
        default=None, description="How long to wait; without it, wait for a person."
    )


class RolloutStep(ApiModel):
    """Exactly one of ``setWeight`` or ``pause``."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.setWeight) != has(self.pause)",
                    "a step is either setWeight or pause, not both nor neither",
                )
            ]
        }
    )

    set_weight: int | None = Field(default=None, ge=0, le=100)
    pause: Pause | None = None


class ParentRef(ApiModel):
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(default=None, max_length=63)
    section_name: str | None = Field(default=None, max_length=253)


class RouterSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.type != 'GatewayAPI' || "
                    "(has(self.parentRefs) && size(self.parentRefs) > 0)",
                    "a GatewayAPI router needs at least one parentRef (the Gateway)",
                    ".parentRefs",
                )
            ]
        }
    )

    type: RouterType = RouterType.REPLICAS
    parent_refs: list[ParentRef] = Field(default_factory=list, max_length=16)
    hostnames: list[Hostname] = Field(default_factory=list, max_length=16)


class PrometheusSpec(ApiModel):
    address: str = Field(
        default="http://prometheus-operated.monitoring:9090",
        pattern=r"^https?://\S+$",
        max_length=2048,
    )
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)


class CheckSpec(ApiModel):
    """One analysis check. ``name`` picks the built-in; the other fields tune it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.name != 'custom' || (has(self.query) && has(self.alias))",
                    "a custom check needs a query and an alias",
                ),
                cel(
                    "self.name != 'custom' || has(self.min) || has(self.max)",
                    "a custom check needs min, max or both",
                ),
                cel(
                    "!has(self.min) || !has(self.max) || self.min <= self.max",
                    "min must not exceed max",
                ),
            ]
        }
    )

    name: CheckName
    alias: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        description="How status and events name this check (default: name).",
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="custom: PromQL with {{namespace}} {{name}} {{revision}} "
        "{{stableRevision}} {{interval}} placeholders.",
    )
    min: float | None = Field(default=None, description="custom: lowest passing value.")
    max: float | None = Field(default=None, description="custom: highest passing value.")
    max_increase: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="error-rate: tolerated absolute rise of the 5xx share over stable "
        "(default 0.01).",
    )
    quantile: float | None = Field(
        default=None, gt=0, lt=1, description="latency: the quantile compared (default 0.99)."
    )
    max_ratio: float | None = Field(
        default=None, ge=1, description="latency: canary/stable ceiling (default 1.5)."
    )
    max_seconds: float | None = Field(
        default=None, gt=0, description="latency: absolute ceiling in seconds."
    )
    method: DriftMethod | None = Field(
        default=None, description="prediction-drift: chi-square (default) or psi."
    )
    max_psi: float | None = Field(
        default=None, gt=0, description="prediction-drift with psi: limit (default 0.2)."
    )

    @property
    def key(self) -> str:
        """The name status and events use for this check."""
        return self.alias or self.name.value


def _default_checks() -> list[CheckSpec]:
    return [
        CheckSpec(name=CheckName.CONTRACT),
        CheckSpec(name=CheckName.ERROR_RATE),
        CheckSpec(name=CheckName.LATENCY),
    ]


class AnalysisSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.checks.all(c, self.checks.exists_one(d, "
                    "(has(d.alias) ? d.alias : d.name) == (has(c.alias) ? c.alias : c.name)))",
                    "each check needs a distinct name (set alias to tell them apart)",
                    ".checks",
                )
            ]
        }
    )

    interval: Duration = "5s"
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec)
    min_sample_size: int = Field(
        default=10,
        ge=1,
        le=10_000_000,
        description="Requests the canary must have served before any verdict.",
    )
    failure_limit: int = Field(
        default=1, ge=1, le=100, description="Consecutive failed analyses before rollback."
    )
    checks: list[CheckSpec] = Field(default_factory=_default_checks, max_length=32)


def _default_steps() -> list[RolloutStep]:
    return [
        RolloutStep(set_weight=10),
        RolloutStep(pause=Pause(duration="30s")),
        RolloutStep(set_weight=50),
        RolloutStep(pause=Pause(duration="30s")),
        RolloutStep(set_weight=100),
    ]


_WEIGHTS = "self.map(s, has(s.setWeight), s.setWeight)"


class RolloutSpec(ApiModel):
    steps: list[RolloutStep] = Field(
        default_factory=_default_steps,
        min_length=1,
        max_length=64,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"{_WEIGHTS}.isSorted() && "
                    f"{_WEIGHTS}.all(x, {_WEIGHTS}.filter(y, y == x).size() == 1)",
                    "setWeight values must strictly increase from step to step",
                ),
                cel(
                    "self.exists(s, has(s.setWeight) && s.setWeight == 100)",
                    "the last setWeight must be 100",
                ),
            ]
        },
    )
    router: RouterSpec = Field(default_factory=RouterSpec)
    analysis: AnalysisSpec | None = None
    progress_deadline_seconds: int = Field(default=600, ge=1, le=86_400)


class ModelDeploymentSpec(ApiModel):
    model: ModelSource
    serving: ServingSpec = Field(default_factory=ServingSpec)
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)


# --- status -----------------------------------------------------------------


class CheckResult(ApiModel):
    """The last verdict of one check, as status shows it."""

    name: str
    verdict: Verdict
    value: float | None = None
    stable_value: float | None = None
    samples: int = 0
    reason: str = ""


class Condition(ApiModel):
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: str = ""


class ModelDeploymentStatus(ApiModel):
    """Everything a decision depends on lives here, so a restart resumes exactly."""

    model_config = ConfigDict(extra="ignore")

    phase: Phase = Phase.PENDING
    stable_revision: str | None = None
    stable_version: str | None = None
    canary_revision: str | None = None
    canary_version: str | None = None
    canary_weight: int = 0
    current_step: int = 0
    step_started_at: str | None = None
    rollout_started_at: str | None = None
    traffic_started_at: str | None = None
    analysis: list[CheckResult] = Field(default_factory=list)
    analysis_rounds: int = 0
    last_analysis_at: str | None = None
    consecutive_failures: int = 0
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int = 0
    message: str = ""


class ModelDeployment(ApiModel):
    """A whole object as read from the API server."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)
