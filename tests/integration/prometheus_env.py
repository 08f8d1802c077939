"""A real Prometheus for tests: Debian's binary on a free loopback port.

It scrapes the given loopback targets every second and adds the label
contract (``namespace``, ``modeldeployment``, ``revision``) from its scrape
configuration, as the chart's PodMonitor does in a cluster.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

MISSING = "prometheus not found on PATH: run tools/bootstrap-system.sh (as root) to install it"
WAIT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, ready: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    pytest.fail(f"gave up waiting for {what} after {timeout:.0f}s")


class PrometheusServer:
    """A real Prometheus process with its own config and data directory."""

    def __init__(self, workdir: Path, targets: list[tuple[int, dict[str, str]]]) -> None:
        """Scrape each ``(port, labels)`` on loopback every second, adding the labels."""
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail(MISSING)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "serving",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{port}"], "labels": labels}
                        for port, labels in targets
                    ],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for("Prometheus to be ready", self._ready)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"prometheus exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == httpx.codes.OK
        except httpx.HTTPError:
            return False

    def value(self, promql: str) -> float | None:
        """The single value of an instant query, or None when there is none."""
        body = httpx.post(f"{self.url}/api/v1/query", data={"query": promql}, timeout=5).json()
        result = body["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
