"""Serving benchmark: the onnx-serving bento against a bare Starlette + onnxruntime server.

Both servers run side by side in the same run on the same model (the v1
sample), with the same worker count, and are measured in interleaved rounds
so that noise from other processes on the machine hits both alike. Reported:

- raw in-process ``session.run`` calls per second (one row): the ceiling;
- closed-loop throughput, p50 and p99 at concurrency 1, 8 and 32 and the
  non-2xx count, for both servers (median over rounds);
- an open-loop run of the bento at 80% of its peak rate, counting non-2xx.

On a machine with at least two CPUs the load generator is pinned to CPU 0
and both servers to the others, as a pod with that CPU share would get: the
client never competes with the server it measures. The last line is
machine-readable::

    throughput_ratio_c32=<x> p99_ratio_c32=<y> non2xx_at_80pct=<n>

Usage: ``python bench/serving/run.py [--seconds 4] [--rounds 3]`` (``make bench-serving``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from loadgen import Result, build_requests, run_closed, run_open
from proctree import stop_process_group

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / ".local" / "models"
CONCURRENCIES = (1, 8, 32)


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_layout() -> tuple[set[int], set[int]]:
    """(client CPUs, server CPUs); both the full set when there is only one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(cpus), set(cpus)
    return {cpus[0]}, set(cpus[1:])


def start(name: str, argv: list[str], env: dict[str, str], cpus: set[int], log: Path) -> Server:
    """Starts a server whose processes (and the workers they fork) run on ``cpus``."""
    port = int(env["PORT"])
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)  # inherited at fork; restored right after
    try:
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so stop() can end the server and all its workers
        )
    finally:
        os.sched_setaffinity(0, mine)
    return Server(name, port, process, log)


def stop(server: Server) -> None:
    stop_process_group(server.process, timeout=20)


def wait_ready(server: Server, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{server.port}/v2/health/ready"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited; see {server.log}:\n{server.log.read_text()}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{server.name} not ready after {timeout:.0f}s; see {server.log}")


@contextlib.contextmanager
def servers(model: Path, sha256: str, workers: int, cpus: set[int]) -> Iterator[list[Server]]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "BENTOML_"))}
    bento_env = {
        **base,
        "PORT": str(free_port()),
        "MODEL_NAME": "v1",
        "MODEL_VERSION": "v1",
        "MODEL_SHA256": sha256,
        "SERVING_WORKERS": str(workers),
        "BENTOML_HOME": str(scratch / "bentoml"),
    }
    bare_env = {**base, "PORT": str(free_port())}
    started: list[Server] = []
    try:
        started.append(
            start(
                "bento",
                [str(ROOT / "tools" / "serve.sh"), str(model), bento_env["PORT"]],
                bento_env,
                cpus,
                scratch / "bento.log",
            )
        )
        started.append(
            start(
                "bare",
                [
                    sys.executable,
                    str(Path(__file__).with_name("bare_server.py")),
                    str(model),
                    bare_env["PORT"],
                    str(workers),
                ],
                bare_env,
                cpus,
                scratch / "bare.log",
            )
        )
        for server in started:
            wait_ready(server)
        yield started
    finally:
        for server in started:
            stop(server)


def ceiling(model: Path, sample: list[float], seconds: float = 2.0) -> float:
    """Single-row ``session.run`` calls per second in this process: no HTTP at all."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    feed = {"input": np.asarray([sample], dtype=np.float32)}
    names = [o.name for o in session.get_outputs()]
    for _ in range(1000):
        session.run(names, feed)
    calls, start_at = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start_at) < seconds:
        for _ in range(500):
            session.run(names, feed)
        calls += 500
    return calls / elapsed


@dataclass
class Cell:
    throughput: float
    p50_ms: float
    p99_ms: float
    non2xx: int


def summarise(results: list[Result]) -> Cell:
    return Cell(
        throughput=statistics.median(r.throughput for r in results),
        p50_ms=statistics.median(r.quantile_ms(0.5) for r in results),
        p99_ms=statistics.median(r.quantile_ms(0.99) for r in results),
        non2xx=sum(r.non2xx for r in results),
    )


async def measure(
    started: list[Server], bodies: list[bytes], seconds: float, rounds: int, warmup: float
) -> dict[tuple[str, int], Cell]:
    requests = {
        s.name: build_requests("127.0.0.1", s.port, "/v2/models/v1/infer", bodies) for s in started
    }
    for server in started:
        # Long enough for steady state: BentoML's per-request timers live for
        # REQUEST_TIMEOUT_SECONDS (10 s), and only then does their count stop growing.
        await run_closed("127.0.0.1", server.port, requests[server.name], 32, warmup)
    cells: dict[tuple[str, int], Cell] = {}
    for concurrency in CONCURRENCIES:
        runs: dict[str, list[Result]] = {s.name: [] for s in started}
        for round_index in range(rounds):
            # Alternate who goes first so neither always follows the other.
            order = started if round_index % 2 == 0 else list(reversed(started))
            for server in order:
                runs[server.name].append(
                    await run_closed(
                        "127.0.0.1", server.port, requests[server.name], concurrency, seconds
                    )
                )
        for name, results in runs.items():
            cells[(name, concurrency)] = summarise(results)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each closed-loop run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per cell")
    parser.add_argument("--open-seconds", type=float, default=10.0, help="80%% open-loop run")
    parser.add_argument("--warmup", type=float, default=15.0, help="c=32 load before measuring")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="workers for both servers (default: one per server CPU)",
    )
    args = parser.parse_args()

    manifest_path = MODELS / "manifest.json"
    if not manifest_path.exists():
        raise SystemExit(f"{manifest_path} is missing: run 'make models' first")
    entry = json.loads(manifest_path.read_text())["models"]["v1"]
    model = MODELS / entry["file"]
    rows: list[list[float]] = json.loads((MODELS / "samples.json").read_text())["input"]
    bodies = [
        json.dumps(
            {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": row}]}
        ).encode()
        for row in rows[:256]
    ]

    client_cpus, server_cpus = cpu_layout()
    workers = args.workers or len(server_cpus)
    os.sched_setaffinity(0, client_cpus)
    ceiling_rate = ceiling(model, rows[0])
    print(
        f"model v1 ({model}); servers on CPUs {sorted(server_cpus)} with {workers} "
        f"worker(s) each; load generator on CPUs {sorted(client_cpus)}"
    )
    print(f"{args.rounds} interleaved rounds of {args.seconds:.0f}s per cell, medians reported")

    with servers(model, entry["sha256"], workers, server_cpus) as started:
        cells = asyncio.run(measure(started, bodies, args.seconds, args.rounds, args.warmup))
        open_results: dict[str, tuple[float, Result]] = {}
        for server in started:  # each at 80% of its own peak rate
            peak = max(cells[(server.name, c)].throughput for c in CONCURRENCIES)
            requests = build_requests("127.0.0.1", server.port, "/v2/models/v1/infer", bodies)
            open_results[server.name] = (
                0.8 * peak,
                asyncio.run(
                    run_open(
                        "127.0.0.1",
                        server.port,
                        requests,
                        rate=0.8 * peak,
                        seconds=args.open_seconds,
                    )
                ),
            )

    print()
    print(f"raw onnxruntime session.run, 1 row, in-process: {ceiling_rate:,.0f} calls/s (ceiling)")
    print()
    header = f"{'server':<7}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
    print(header)
    print("-" * len(header))
    for concurrency in CONCURRENCIES:
        for name in ("bare", "bento"):
            cell = cells[(name, concurrency)]
            print(
                f"{name:<7}{concurrency:>5}{cell.throughput:>10,.0f}{cell.p50_ms:>9.2f}"
                f"{cell.p99_ms:>9.2f}{cell.non2xx:>9}"
            )
        bare, ours = cells[("bare", concurrency)], cells[("bento", concurrency)]
        print(
            f"{'ratio':<7}{concurrency:>5}{ours.throughput / bare.throughput:>10.2f}"
            f"{ours.p50_ms / bare.p50_ms:>9.2f}{ours.p99_ms / bare.p99_ms:>9.2f}"
        )
    print()
    for name, (rate, result) in open_results.items():
        print(
            f"{name:<6} open loop at 80% of its peak ({rate:,.0f} req/s for "
            f"{args.open_seconds:.0f}s): {result.completed:,} answered, "
            f"p50 {result.quantile_ms(0.5):.2f} ms, p99 {result.quantile_ms(0.99):.2f} ms, "
            f"non-2xx {result.non2xx}"
        )
    open_result = open_results["bento"][1]
    bare32, bento32 = cells[("bare", 32)], cells[("bento", 32)]
    print(
        f"throughput_ratio_c32={bento32.throughput / bare32.throughput:.2f} "
        f"p99_ratio_c32={bento32.p99_ms / bare32.p99_ms:.2f} "
        f"non2xx_at_80pct={open_result.non2xx}"
    )


if __name__ == "__main__":
    main()
