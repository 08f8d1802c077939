"""Real ``bentoml serve`` processes for the serving tests.

Every server is started through ``tools/serve.sh`` (the path ``make serve``
takes) on a free loopback port with its own ``BENTOML_HOME``, from the sample
models in ``.local/models`` (built here if missing). All servers of the
session start in parallel on first use, because a BentoML start costs seconds
of CPU, and stop at the end of the session.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving_helpers import MAX_BATCH_ROWS, MAX_REQUEST_BYTES, MODELS, ROOT, Server, free_port, stop

SERVE = ROOT / "tools" / "serve.sh"
VENV = Path(sys.prefix)


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    """The sample models' manifest; builds the models when they are missing."""
    path = MODELS / "manifest.json"
    if not path.exists():
        build = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bentos" / "models" / "build_models.py"),
                "--out",
                str(MODELS),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if build.returncode != 0:
            pytest.fail(
                "could not build the sample models (needs the 'models' extra: "
                f"pip install -e '.[models]' or make venv):\n{build.stderr}"
            )
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@pytest.fixture(scope="session")
def samples(manifest: dict[str, Any]) -> list[list[float]]:
    rows: list[list[float]] = json.loads((MODELS / manifest["samples"]["file"]).read_text())[
        "input"
    ]
    return rows


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def model_http_server() -> Iterator[str]:
    """A plain HTTP file server over ``.local/models``, for http:// model URIs."""
    handler = functools.partial(_QuietHandler, directory=str(MODELS))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


# name -> (model file or URI template, extra environment). "{http}" is replaced
# by the model HTTP server's base URL.
SERVER_SPECS: dict[str, tuple[str, dict[str, str]]] = {
    "main": (
        "v1",
        {
            "SERVING_WORKERS": "2",
            "MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
            "MAX_BATCH_ROWS": str(MAX_BATCH_ROWS),
        },
    ),
    "metrics": (
        "v1",
        {"SERVING_WORKERS": "2", "MODEL_NAME": "classifier", "MODEL_VERSION": "1.0.0"},
    ),
    "v2": ("v2", {}),
    "drift": ("drift", {}),
    "slow": ("slow", {}),
    "nonfinite": ("nonfinite", {}),
    "contract-break": ("contract-break", {}),
    "corrupt": ("corrupt", {}),
    "wrong-sha": ("v1", {"MODEL_SHA256": "0" * 64}),
    "http": ("{http}/v1.onnx", {}),
    "http-missing": ("{http}/no-such-model.onnx", {"MODEL_FETCH_ATTEMPTS": "1"}),
    "bad-config": ("v1", {"MAX_BATCH_ROWS": "many"}),
}


@pytest.fixture(scope="session")
def servers(
    manifest: dict[str, Any], model_http_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    if not (VENV / "bin" / "bentoml").exists():
        pytest.fail(f"bentoml is not installed in {VENV}: run 'make venv' (the 'serving' extra)")
    base = tmp_path_factory.mktemp("servers")
    started: dict[str, Server] = {}
    try:
        for name, (model, extra) in SERVER_SPECS.items():
            port = free_port()
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("MODEL_", "BENTOML_", "SERVING_", "MAX_"))
            }
            env.update(
                {
                    "MODELDEPLOY_VENV": str(VENV),
                    "BENTOML_HOME": str(base / name),
                    "MODEL_NAME": name if name != "main" else "v1",
                    "MODEL_VERSION": f"{name}-test",
                    "SERVING_WORKERS": "1",
                    **extra,
                }
            )
            if model.startswith("{http}"):
                target = model.replace("{http}", model_http_server)
                env.setdefault("MODEL_SHA256", manifest["models"]["v1"]["sha256"])
            else:
                target = str(MODELS / manifest["models"][model]["file"])
            log = base / f"{name}.log"
            process = subprocess.Popen(
                [str(SERVE), target, str(port)],
                env=env,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            started[name] = Server(name, port, process, log, env)
        for server in started.values():
            server.wait_live()
        yield started
    finally:
        for server in started.values():
            stop(server)


@pytest.fixture(scope="session")
def main_server(servers: dict[str, Server]) -> Server:
    servers["main"].wait_ready()
    return servers["main"]


@pytest.fixture
def client(main_server: Server) -> Iterator[httpx.Client]:
    with main_server.client() as http_client:
        yield http_client
