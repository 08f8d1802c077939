"""The per-process serving state: configuration, the loaded model, readiness.

Loading runs in a background thread started by the BentoML service's
constructor, so the HTTP server answers liveness probes (and explains why it
is not ready) while a large model downloads. The model becomes visible to
request handlers in one assignment, after it has been fetched, verified,
checked and trial-run; until then every inference answers 503.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from . import gc_policy
from .fetch import FetchError, fetch_and_verify
from .metrics import Metrics
from .model import LoadedModel, ModelLoadError, load_model
from .protocol import Limits
from .settings import Settings, SettingsError, load_settings

log = logging.getLogger("onnx_serving")


@dataclass(frozen=True)
class Ready:
    """Everything a request handler needs, published atomically."""

    settings: Settings
    model: LoadedModel
    metrics: Metrics
    limits: Limits


class ServingState:
    def __init__(self) -> None:
        self.ready: Ready | None = None
        self.settings: Settings | None = None
        self.metrics: Metrics | None = None
        self.reason = "starting: the model has not been loaded yet"
        self.failed = False
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Starts loading once per process; later calls are no-ops."""
        with self._lock:
            if self._started:
                return
            self._started = True
        log.setLevel(logging.INFO)  # BentoML leaves the root logger at WARNING
        try:
            self.settings = load_settings()
        except SettingsError as exc:
            self._fail(f"configuration error: {exc}")
            return
        # Created before loading so requests refused while loading are counted too.
        self.metrics = Metrics(self.settings.model_name, self.settings.model_version)
        threading.Thread(
            target=self._load, args=(self.settings,), name="model-loader", daemon=True
        ).start()

    def _fail(self, reason: str) -> None:
        self.reason = reason
        self.failed = True
        log.error("not ready, and will not become ready: %s", reason)

    def _retrying(self, message: str) -> None:
        self.reason = f"fetching the model: {message}"

    def _load(self, settings: Settings) -> None:
        self.reason = f"fetching the model from {settings.model_uri}"
        log.info(
            "fetching model %s version %s from %s",
            settings.model_name,
            settings.model_version,
            settings.model_uri,
        )
        try:
            fetched = fetch_and_verify(
                settings.model_uri,
                expected_sha256=settings.model_sha256,
                timeout=settings.fetch_timeout_seconds,
                max_bytes=settings.max_model_bytes,
                attempts=settings.fetch_attempts,
                on_retry=self._retrying,
            )
        except FetchError as exc:
            self._fail(f"model fetch failed: {exc}")
            return
        if not fetched.verified:
            log.warning(
                "MODEL_SHA256 is not set: serving %s unverified (sha256 %s)",
                settings.model_uri,
                fetched.sha256,
            )
        self.reason = "checking the model graph and building the onnxruntime session"
        try:
            model = load_model(
                fetched.data,
                sha256=fetched.sha256,
                verified=fetched.verified,
                threads=settings.intra_op_threads,
                offload=settings.offload,
            )
        except ModelLoadError as exc:
            self._fail(f"model rejected: {exc}")
            return
        except Exception as exc:  # never leave the state "loading" forever
            log.exception("unexpected error while loading the model")
            self._fail(f"model rejected: unexpected error: {exc!r}")
            return
        assert self.metrics is not None
        limits = Limits(settings.max_batch_rows, settings.allow_nonfinite_inputs)
        self.ready = Ready(settings, model, self.metrics, limits)
        self.reason = "ready"
        if settings.gc_policy == "freeze":
            gc_policy.install(settings.gc_young_interval_seconds, settings.gc_full_interval_seconds)
        log.info(
            "ready: serving %s version %s (sha256 %s%s), %d intra-op thread(s)",
            settings.model_name,
            settings.model_version,
            fetched.sha256,
            ", verified" if fetched.verified else ", NOT verified",
            settings.intra_op_threads,
        )


STATE = ServingState()
