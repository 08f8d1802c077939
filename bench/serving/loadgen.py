"""A small, fast HTTP/1.1 load generator for the serving benchmark.

The client shares two cores with the servers it measures, so it must cost as
little as possible per request: each keep-alive connection is an
``asyncio.Protocol`` that parses responses in ``data_received`` and writes
the next request from the same callback, with no task switch or future per
request. Two modes:

- closed loop (``run_closed``): ``concurrency`` connections, each sending its
  next request as soon as the previous answer arrives;
- open loop (``run_open``): requests are due at a fixed rate whether or not
  earlier ones have finished; latency is measured from the moment a request
  was due, so queueing in the client counts against the server (no
  coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Result:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    codes: Counter[int] = field(default_factory=Counter)
    errors: int = 0  # connection failures: counted as non-2xx

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    @property
    def non2xx(self) -> int:
        return sum(n for code, n in self.codes.items() if not 200 <= code < 300) + self.errors

    def quantile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return float(np.quantile(np.asarray(self.latencies), q) * 1e3)


def build_requests(host: str, port: int, path: str, bodies: Sequence[bytes]) -> list[bytes]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nConnection: keep-alive\r\n"
    )
    return [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]


class _Conn(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    def __init__(self, on_response: Callable[[_Conn, int], None], on_lost: Callable[[_Conn], None]):
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.on_response = on_response
        self.on_lost = on_lost
        self.started = 0.0  # when the in-flight request was due
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, request: bytes, due: float) -> None:
        assert self.transport is not None
        self.started = due
        self.busy = True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).split(b"\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            code = int(head[0].split(b" ", 2)[1])
            self.busy = False
            self.on_response(self, code)

    def connection_lost(self, _exc: Exception | None) -> None:
        self.transport = None
        self.on_lost(self)


async def _connect(
    host: str,
    port: int,
    on_response: Callable[[_Conn, int], None],
    on_lost: Callable[[_Conn], None],
) -> _Conn:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: _Conn(on_response, on_lost), host, port)
    return proto


async def run_closed(
    host: str, port: int, requests: Sequence[bytes], concurrency: int, seconds: float
) -> Result:
    """``concurrency`` connections sending back to back for ``seconds``."""
    loop = asyncio.get_running_loop()
    result = Result(seconds=seconds)
    cycle = itertools.cycle(requests)
    stop_at = 0.0
    done = loop.create_future()
    live: set[_Conn] = set()

    def on_response(conn: _Conn, code: int) -> None:
        now = time.perf_counter()
        result.latencies.append(now - conn.started)
        result.codes[code] += 1
        if now < stop_at:
            conn.send(next(cycle), now)
        else:
            live.discard(conn)
            if not live and not done.done():
                done.set_result(None)

    def on_lost(conn: _Conn) -> None:
        if conn in live:
            result.errors += 1 if conn.busy else 0
            live.discard(conn)
            if not live and not done.done():
                done.set_result(None)

    conns = [await _connect(host, port, on_response, on_lost) for _ in range(concurrency)]
    live.update(conns)
    start = time.perf_counter()
    stop_at = start + seconds
    for conn in conns:
        conn.send(next(cycle), time.perf_counter())
    await asyncio.wait_for(done, timeout=seconds + 60)
    result.seconds = time.perf_counter() - start
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return result


async def run_open(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    rate: float,
    seconds: float,
    max_connections: int = 64,
) -> Result:
    """Requests due at ``rate`` per second for ``seconds``, over up to ``max_connections``."""
    loop = asyncio.get_running_loop()
    result = Result(seconds=seconds)
    cycle = itertools.cycle(requests)
    idle: deque[_Conn] = deque()  # FIFO keeps every connection warm (no keep-alive expiry)
    backlog: deque[float] = deque()  # due times of requests waiting for a free connection
    finished = loop.create_future()
    total = int(rate * seconds)

    def maybe_finish() -> None:
        if result.completed + result.errors >= total and not finished.done():
            finished.set_result(None)

    def on_response(conn: _Conn, code: int) -> None:
        result.latencies.append(time.perf_counter() - conn.started)
        result.codes[code] += 1
        if backlog:
            conn.send(next(cycle), backlog.popleft())
        else:
            idle.append(conn)
        maybe_finish()

    def on_lost(conn: _Conn) -> None:
        if conn.busy:
            result.errors += 1
            maybe_finish()
        if conn in idle:
            idle.remove(conn)

    pool = [await _connect(host, port, on_response, on_lost) for _ in range(max_connections)]
    idle.extend(pool)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due_count = min(total, int((now - start) * rate) + 1) - sent
        for i in range(due_count):
            due = start + (sent + i) / rate
            if idle:
                idle.popleft().send(next(cycle), due)
            else:
                backlog.append(due)
        sent += max(0, due_count)
        await asyncio.sleep(0.0005)
    try:
        await asyncio.wait_for(finished, timeout=60)
    except TimeoutError:  # never answered: as bad as an error status
        result.errors += total - result.completed - result.errors
    result.seconds = time.perf_counter() - start
    for conn in pool:
        if conn.transport is not None:
            conn.transport.close()
    return result
