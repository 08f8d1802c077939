"""Helpers shared by the serving tests: a handle on one running server and request builders."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from proctree import stop_process_group  # noqa: E402 - lives beside the dev tooling

MODELS = ROOT / ".local" / "models"
START_TIMEOUT = 180.0
# Small limits on the main server so the limit tests stay cheap.
MAX_REQUEST_BYTES = 65536
MAX_BATCH_ROWS = 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """One running ``bentoml serve``: its URL, log and process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_live(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v2/health/live", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        pytest.fail(f"{self.name} not live after {timeout:.0f}s:\n{self.log_tail()}")

    def wait_settled(self, timeout: float = 60.0) -> httpx.Response:
        """Waits until the server is ready or has given up; returns the last readiness answer."""
        self.wait_live()
        deadline = time.monotonic() + timeout
        while True:
            response = httpx.get(f"{self.url}/v2/health/ready", timeout=5)
            if response.json().get("state") != "loading":
                return response
            if time.monotonic() > deadline:
                return response
            time.sleep(0.2)

    def wait_ready(self) -> None:
        response = self.wait_settled()
        if response.status_code != 200:
            pytest.fail(f"{self.name} not ready: {response.text}\n{self.log_tail()}")


def stop(server: Server) -> None:
    stop_process_group(server.process, timeout=30)


def oip_request(
    rows: list[list[float]], name: str = "input", datatype: str = "FP32"
) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": name, "datatype": datatype, "shape": [len(rows), len(rows[0])], "data": rows}
        ]
    }
