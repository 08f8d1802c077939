"""Garbage-collector policy for a serving worker.

Why this exists (measured, see README "Performance"): BentoML's request
timeout middleware schedules a timer per request and never cancels it, so
every request leaves about five GC-tracked objects alive for the whole
timeout (60 s by default). They are acyclic and die by reference counting,
but CPython's generational collector keeps rescanning them: at a few
thousand requests per second the worker spent 15-30% of its CPU in the
collector, with pauses of 300-800 ms.

The request path itself creates no cyclic garbage (a full collection after
tens of thousands of requests finds only the sockets of closed connections),
so the policy is:

- freeze everything that exists once the model is loaded (BentoML, onnx,
  the session: nothing there ever becomes garbage);
- turn automatic collection off, and instead, every ``young_interval``
  seconds, collect the youngest generation and freeze the survivors, so a
  long-lived timer is scanned once, not hundreds of times;
- every ``full_interval`` seconds, unfreeze and run one full collection, so
  cycles that outlived a freeze (a keep-alive connection closed later) are
  reclaimed too.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

log = logging.getLogger("onnx_serving.gc")


def install(young_interval: float, full_interval: float) -> threading.Thread:
    """Applies the policy to this process; returns the collector thread."""
    gc.collect()
    gc.freeze()
    gc.disable()
    thread = threading.Thread(
        target=_run, args=(young_interval, full_interval), name="gc-policy", daemon=True
    )
    thread.start()
    return thread


def _run(young_interval: float, full_interval: float) -> None:
    next_full = time.monotonic() + full_interval
    while True:
        time.sleep(young_interval)
        if time.monotonic() >= next_full:
            start = time.thread_time()
            gc.unfreeze()
            found = gc.collect()
            gc.freeze()
            log.info(
                "full collection: %d unreachable objects, %.0f ms CPU",
                found,
                (time.thread_time() - start) * 1e3,
            )
            next_full = time.monotonic() + full_interval
        else:
            gc.collect(0)
            gc.freeze()
