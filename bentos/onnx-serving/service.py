"""BentoML entry point: ``bentoml serve service:OnnxServing``.

The HTTP surface is the Starlette app in ``onnx_serving.app``, mounted at the
root so the Open Inference Protocol paths are exactly ``/v2/...``. BentoML
provides the process model (workers sharing one socket), lifecycle and
packaging; see the README for the settings chosen and why.
"""

from __future__ import annotations

import bentoml
from onnx_serving.app import app
from onnx_serving.settings import SettingsError, default_workers
from onnx_serving.state import STATE

try:
    WORKERS = default_workers()
except SettingsError:
    WORKERS = 1  # the state reports the configuration error as the not-ready reason


@bentoml.service(
    name="onnx_serving",
    workers=WORKERS,
    logging={"access": {"enabled": False}},
    metrics={"enabled": False},
    tracing={"excluded_urls": [".*"]},
)
@bentoml.asgi_app(app, path="/")
class OnnxServing:
    def __init__(self) -> None:
        STATE.start()

    def __is_ready__(self) -> bool:
        return STATE.ready is not None
