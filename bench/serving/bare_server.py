"""The baseline: a minimal Starlette + onnxruntime server, as a person would write it.

Same wire format as the bento's Open Inference Protocol endpoint (so one load
generator drives both), but none of the service's work: no validation beyond
what numpy does, no metrics, no readiness. Served by uvicorn with the same
HTTP stack and worker count as the bento.

Usage: ``python bench/serving/bare_server.py MODEL.onnx PORT [WORKERS]``
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Any

import numpy as np
import onnxruntime as ort
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_session: Any = None


def _session_for(path: str) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


async def infer(request: Request) -> JSONResponse:
    global _session  # noqa: PLW0603
    if _session is None:
        _session = _session_for(os.environ["BARE_MODEL"])
    doc = await request.json()
    item = doc["inputs"][0]
    x = np.asarray(item["data"], dtype=np.float32).reshape(item["shape"])
    names = [o.name for o in _session.get_outputs()]
    values = _session.run(names, {item["name"]: x})
    return JSONResponse(
        {
            "model_name": request.path_params["model_name"],
            "outputs": [
                {"name": n, "shape": list(v.shape), "data": v.reshape(-1).tolist()}
                for n, v in zip(names, values, strict=True)
            ],
        }
    )


async def ready(_: Request) -> JSONResponse:
    return JSONResponse({"ready": True})


app = Starlette(
    routes=[
        Route("/v2/models/{model_name}/infer", infer, methods=["POST"]),
        Route("/v2/health/ready", ready),
    ]
)


def _serve_child(fd: int) -> None:
    config = uvicorn.Config(app, access_log=False, log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])


def main() -> None:
    if sys.argv[1] == "--child":
        os.environ["BARE_MODEL"] = sys.argv[3]
        _serve_child(int(sys.argv[2]))
        return
    model, port = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    # One listening socket shared by all workers, as BentoML does. It is made
    # with an explicit IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted
    # connections (uvicorn's own multi-worker socket does not, and Nagle's
    # algorithm then adds ~40 ms to every keep-alive response).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.set_inheritable(True)
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", str(sock.fileno()), model],
            pass_fds=[sock.fileno()],
        )
        for _ in range(workers)
    ]

    def stop(*_: object) -> None:
        for child in children:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.wait()


if __name__ == "__main__":
    main()
