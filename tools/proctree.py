"""Stopping a server that forks workers (BentoML's arbiter), for tests and benchmarks.

The server must have been started with ``start_new_session=True`` so its
process group holds the whole family.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, read from /proc."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    return found


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the group (the arbiter stops its workers), SIGKILL it after ``timeout``,
    then kill workers that outlived their arbiter."""
    family = descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
