"""Service configuration, read once from the environment.

Every knob the operator sets on a pod lives here with its default, so the
README table and the code cannot drift apart. Parsing errors are reported as
``SettingsError`` with the variable's name; the service then stays not-ready
with that reason instead of crashing in a restart loop.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class SettingsError(ValueError):
    """An environment variable has a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    model_uri: str
    model_sha256: str | None
    model_name: str
    model_version: str
    max_request_bytes: int
    max_batch_rows: int
    allow_nonfinite_inputs: bool
    fetch_timeout_seconds: float
    fetch_attempts: int
    max_model_bytes: int
    workers: int
    intra_op_threads: int
    offload: str  # "auto" | "always" | "never"
    request_timeout_seconds: float
    gc_policy: str  # "freeze" | "default"
    gc_young_interval_seconds: float
    gc_full_interval_seconds: float


def cpu_share() -> float:
    """CPUs this process may use: the cgroup quota if any, else the affinity mask."""
    cpus = float(len(os.sched_getaffinity(0)))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, int(quota) / int(period))
    except (OSError, ValueError):
        try:
            quota_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if quota_us > 0:
                cpus = min(cpus, quota_us / period_us)
        except (OSError, ValueError):
            pass
    return cpus


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (true/false)")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not value > 0:
        raise SettingsError(f"{name}={raw} must be positive")
    return value


def request_timeout(env: Mapping[str, str] | None = None) -> float:
    """REQUEST_TIMEOUT_SECONDS: BentoML answers 504 when a response has not started by then."""
    return _float(os.environ if env is None else env, "REQUEST_TIMEOUT_SECONDS", 10.0)


def default_workers(env: Mapping[str, str] | None = None) -> int:
    """Worker processes: SERVING_WORKERS, else one per whole CPU of the pod's share."""
    env = os.environ if env is None else env
    return _int(env, "SERVING_WORKERS", max(1, math.floor(cpu_share())))


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    uri = env.get("MODEL_URI", "").strip()
    if not uri:
        raise SettingsError("MODEL_URI is not set (e.g. file:///models/v1.onnx)")
    sha = env.get("MODEL_SHA256", "").strip().lower() or None
    if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise SettingsError(f"MODEL_SHA256={sha!r} is not a 64-digit hex sha256")
    name = env.get("MODEL_NAME", "").strip() or _name_from_uri(uri)
    if "/" in name or not name:
        raise SettingsError(f"MODEL_NAME={name!r} must be a non-empty name without '/'")
    workers = default_workers(env)
    threads_default = max(1, math.floor(cpu_share() / workers))
    offload = env.get("INFERENCE_OFFLOAD", "auto").strip().lower() or "auto"
    if offload not in {"auto", "always", "never"}:
        raise SettingsError(f"INFERENCE_OFFLOAD={offload!r} must be auto, always or never")
    gc_mode = env.get("GC_POLICY", "freeze").strip().lower() or "freeze"
    if gc_mode not in {"freeze", "default"}:
        raise SettingsError(f"GC_POLICY={gc_mode!r} must be freeze or default")
    return Settings(
        model_uri=uri,
        model_sha256=sha,
        model_name=name,
        model_version=env.get("MODEL_VERSION", "").strip() or "unversioned",
        max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 1 << 20),
        max_batch_rows=_int(env, "MAX_BATCH_ROWS", 1024),
        allow_nonfinite_inputs=_bool(env, "ALLOW_NONFINITE_INPUTS", False),
        fetch_timeout_seconds=_float(env, "MODEL_FETCH_TIMEOUT_SECONDS", 60.0),
        fetch_attempts=_int(env, "MODEL_FETCH_ATTEMPTS", 5),
        max_model_bytes=_int(env, "MAX_MODEL_BYTES", 1 << 30),
        workers=workers,
        intra_op_threads=_int(env, "ORT_INTRA_OP_THREADS", threads_default),
        offload=offload,
        request_timeout_seconds=request_timeout(env),
        gc_policy=gc_mode,
        gc_young_interval_seconds=_float(env, "GC_YOUNG_INTERVAL_SECONDS", 0.1),
        gc_full_interval_seconds=_float(env, "GC_FULL_INTERVAL_SECONDS", 900.0),
    )


def _name_from_uri(uri: str) -> str:
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    stem = last.split("?", 1)[0].removesuffix(".onnx")
    return stem or "model"
