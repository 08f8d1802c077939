"""BentoML entry point: ``bentoml serve service:OnnxServing``.

The HTTP surface is the plain ASGI app in ``onnx_serving.app``, mounted at the
root so the Open Inference Protocol paths are exactly ``/v2/...``. BentoML
provides the process model (workers sharing one socket), lifecycle, probes and
packaging. The settings below were chosen by profiling; README "Performance"
has the measurements.
"""

from __future__ import annotations

import bentoml
from onnx_serving.app import app
from onnx_serving.settings import SettingsError, default_workers, request_timeout
from onnx_serving.state import STATE

try:
    WORKERS = default_workers()
    TIMEOUT = request_timeout()
except SettingsError:
    # Start anyway: the state reports the configuration error as the not-ready reason.
    WORKERS, TIMEOUT = 1, 10.0


@bentoml.service(
    name="onnx_serving",
    # One worker per CPU of the pod's share (SERVING_WORKERS overrides).
    workers=WORKERS,
    # No max_concurrency and no adaptive batching: both shed load with 503s,
    # which canary analysis would read as a broken model.
    traffic={"timeout": TIMEOUT},
    # A log line per request cost more than the inference; the fixed
    # modeldeploy_* metrics count every request instead.
    logging={"access": {"enabled": False}},
    # BentoML's own request metrics duplicate ours and wrap every send; our
    # app serves /metrics from the same multiprocess registry.
    metrics={"enabled": False},
    # No exporter is configured, so spans would go nowhere; this skips span
    # creation on every request.
    tracing={"excluded_urls": [".*"]},
)
@bentoml.asgi_app(app, path="/")
class OnnxServing:
    def __init__(self) -> None:
        STATE.start()

    def __is_ready__(self) -> bool:
        return STATE.ready is not None
