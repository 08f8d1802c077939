"""The HTTP surface: Open Inference Protocol v2 REST, /predict, health and metrics.

A plain ASGI application mounted at the root of the BentoML service. It is
deliberately not a Starlette app: profiling showed that a second framework
layer (routing, middleware, request and response objects) under BentoML's own
stack cost more per request than validating and running a small model, so
routing is a dictionary lookup and responses are two ASGI messages.

Handlers stay thin: read the body within the size limit, hand the JSON to
``protocol`` for validation, run the session and encode the answer. Every
inference request is counted exactly once, with the status it received.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from . import protocol
from .metrics import render_latest
from .protocol import OutputError, RequestError
from .state import STATE, Ready

log = logging.getLogger("onnx_serving.http")
SERVER_NAME = "modeldeploy-onnx-serving"
SERVER_VERSION = "0.1.0"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = b"application/json"
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


class _ClientDisconnectedError(Exception):
    """The client went away before sending its whole body."""


async def _send(send: Send, status: int, body: bytes, content_type: bytes = _JSON) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, payload: Any) -> None:
    await _send(send, status, _encode(payload).encode())


def _error_body(message: str) -> bytes:
    return _encode({"error": message}).encode()


def _content_length(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return bytes(value)
    return None


def _too_large(limit: int) -> RequestError:
    return RequestError(413, f"request body exceeds the limit of {limit} bytes (MAX_REQUEST_BYTES)")


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    declared = _content_length(scope)
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestError(400, f"invalid Content-Length {declared!r}") from None
        if size > limit:
            raise RequestError(
                413,
                f"request body of {size} bytes exceeds the limit of {limit} bytes "
                "(MAX_REQUEST_BYTES)",
            )
    message = await receive()
    body = message.get("body", b"")
    if len(body) > limit:  # chunked uploads have no Content-Length to check up front
        raise _too_large(limit)
    if not message.get("more_body", False) and message["type"] == "http.request":
        return bytes(body)  # the whole body in one message: the common case
    chunks = [body]
    total = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientDisconnectedError
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    if message["type"] == "http.disconnect":
        raise _ClientDisconnectedError
    return b"".join(chunks)


_limiter: anyio.CapacityLimiter | None = None


async def _run(ready: Ready, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    global _limiter  # noqa: PLW0603 - one limiter per worker process, made lazily in its loop
    model = ready.model
    names = model.output_names
    try:
        if model.offload:
            if _limiter is None:
                _limiter = anyio.CapacityLimiter(ready.settings.intra_op_threads)
            values = await anyio.to_thread.run_sync(
                model.session.run, names, feeds, limiter=_limiter
            )
        else:
            # Small models finish in microseconds: a thread hop would cost more.
            values = model.session.run(names, feeds)
    except InvalidArgument as exc:
        raise RequestError(422, f"the model rejected the input: {exc}") from None
    return dict(zip(names, values, strict=True))


async def _inference(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    endpoint: str,
    name: str | None,
    version: str | None,
) -> None:
    start = time.perf_counter()
    ready = STATE.ready
    if ready is None:
        await _send(send, 503, _error_body(f"model not ready: {STATE.reason}"))
        if STATE.metrics is not None:
            STATE.metrics.observe_request(endpoint, 503, time.perf_counter() - start)
        return
    settings = ready.settings
    signature = ready.model.signature
    status = 200
    try:
        if name is not None and name != settings.model_name:
            raise RequestError(
                404,
                f"model {name!r} is not served here; this server serves {settings.model_name!r}",
            )
        if version is not None and version != settings.model_version:
            raise RequestError(
                404,
                f"version {version!r} is not served here; this server "
                f"serves {settings.model_version!r}",
            )
        doc = protocol.decode_json(await _read_body(scope, receive, settings.max_request_bytes))
        limits = ready.limits
        if endpoint == "infer":
            request = protocol.parse_infer(doc, signature, limits)
            outputs = await _run(ready, request.feeds)
            protocol.check_outputs(signature, outputs)
            labels, scores = protocol.predicted_classes(signature, outputs)
            payload = protocol.infer_response(
                settings.model_name, settings.model_version, signature, outputs, request
            )
        else:
            feeds = protocol.parse_predict(doc, signature, limits)
            outputs = await _run(ready, feeds)
            protocol.check_outputs(signature, outputs)
            labels, scores = protocol.predicted_classes(signature, outputs)
            payload = protocol.predict_response(
                settings.model_name, settings.model_version, signature, outputs, labels
            )
        body = _encode(payload).encode()
        ready.metrics.observe_predictions(labels, scores)
    except RequestError as exc:
        status, body = exc.status, _error_body(exc.message)
    except OutputError as exc:
        log.error("%s %s: %s", scope["method"], scope["path"], exc)
        status, body = 500, _error_body(str(exc))
    except _ClientDisconnectedError:
        status, body = 499, b""  # nobody is listening; counted, never sent
    except Exception:
        log.exception("%s %s failed", scope["method"], scope["path"])
        status = 500
        body = _error_body("internal error while running the model; see the server log")
    if status != 499:
        await _send(send, status, body)
    ready.metrics.observe_request(endpoint, status, time.perf_counter() - start)


def _resolve(name: str, version: str | None) -> Ready | tuple[int, str]:
    state = STATE.ready
    if state is None:
        return 503, f"model not ready: {STATE.reason}"
    if name != state.settings.model_name:
        return 404, (
            f"model {name!r} is not served here; this server serves {state.settings.model_name!r}"
        )
    if version is not None and version != state.settings.model_version:
        return 404, (
            f"version {version!r} is not served here; this server serves "
            f"{state.settings.model_version!r}"
        )
    return state


def _metadata(state: Ready) -> dict[str, Any]:
    signature = state.model.signature
    return {
        "name": state.settings.model_name,
        "versions": [state.settings.model_version],
        "platform": "onnxruntime_onnx",
        "inputs": [spec.as_json() for spec in signature.inputs],
        "outputs": [spec.as_json() for spec in signature.outputs],
        "parameters": {
            "sha256": state.model.sha256,
            "sha256_verified": state.model.verified,
            "label_output": signature.label_output,
            "score_output": signature.score_output,
        },
    }


async def _model_get(send: Send, name: str, version: str | None, what: str) -> None:
    state = _resolve(name, version)
    if not isinstance(state, Ready):
        await _send(send, state[0], _error_body(state[1]))
    elif what == "ready":
        await _send_json(send, 200, {"name": name, "ready": True})
    else:
        await _send_json(send, 200, _metadata(state))


async def _health_ready(send: Send) -> None:
    state = STATE.ready
    if state is None:
        # "failed" will not change without a restart; "loading" may still become ready.
        phase = "failed" if STATE.failed else "loading"
        await _send_json(send, 503, {"ready": False, "state": phase, "reason": STATE.reason})
    else:
        body = {
            "ready": True,
            "state": "ready",
            "model_name": state.settings.model_name,
            "model_version": state.settings.model_version,
        }
        await _send_json(send, 200, body)


async def _metrics(send: Send) -> None:
    if STATE.metrics is not None:
        STATE.metrics.flush()  # this worker's tallies; the others flush on their own timers
    content, media_type = await anyio.to_thread.run_sync(render_latest)
    await _send(send, 200, content, media_type.encode())


ENDPOINTS = [
    "POST /v2/models/{name}/infer",
    "POST /v2/models/{name}/versions/{version}/infer",
    "POST /predict",
    "GET /v2/models/{name}",
    "GET /v2/models/{name}/ready",
    "GET /v2/models/{name}/versions/{version}[/ready]",
    "GET /v2/health/ready",
    "GET /v2/health/live",
    "GET /v2",
    "GET /metrics",
]


async def _route(scope: Scope, receive: Receive, send: Send) -> None:
    path: str = scope["path"]
    method: str = scope["method"]
    if path.startswith("/v2/models/"):
        parts = path[len("/v2/models/") :].split("/")
        name, rest = parts[0], parts[1:]
        version = None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        if name and rest == ["infer"]:
            if method != "POST":
                await _send(send, 405, _error_body("use POST for inference"))
                return
            await _inference(scope, receive, send, endpoint="infer", name=name, version=version)
            return
        if name and rest in ([], ["ready"]) and (version is None or version):
            if method not in ("GET", "HEAD"):
                await _send(send, 405, _error_body("use GET for model metadata"))
                return
            await _model_get(send, name, version, "ready" if rest else "metadata")
            return
    elif path == "/predict":
        if method != "POST":
            await _send(send, 405, _error_body("use POST for /predict"))
            return
        await _inference(scope, receive, send, endpoint="predict", name=None, version=None)
        return
    elif method in ("GET", "HEAD"):
        if path == "/v2/health/ready":
            await _health_ready(send)
            return
        if path == "/v2/health/live":
            await _send_json(send, 200, {"live": True})
            return
        if path == "/v2":
            await _send_json(
                send, 200, {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": []}
            )
            return
        if path == "/metrics":  # BentoML's own /metrics route is off; see service.py
            await _metrics(send)
            return
        if path == "/":
            await _send_json(send, 200, {"name": SERVER_NAME, "endpoints": ENDPOINTS})
            return
    await _send(send, 404, _error_body(f"no route for {method} {path}; see GET / for the list"))


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point mounted by ``service.py``."""
    if scope["type"] == "http":
        await _route(scope, receive, send)
