# SPDX-License-Identifier: MIT
"""`zeromesh edge --workers N`: N edge processes on one port, each with SO_REUSEPORT.

The kernel spreads new connections over the processes' listening sockets.
Each process has its own cache, kept coherent by the same invalidations.
The parent only supervises: it restarts a process that dies (with backoff),
forwards SIGTERM/SIGINT to all of them, and exits 0 once they have stopped.
It never imports gevent or opens a connection to the broker itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import time
from collections.abc import Callable

from . import defaults

log = logging.getLogger("zeromesh.edge.supervisor")

_PR_SET_PDEATHSIG = 1
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
"""Waits before restarting a process that keeps dying; back to the first after it ran STABLE_S."""
STABLE_S = 10.0
CONFIG_ERROR = 2
"""A child's exit status for a configuration error (bad routes, address in use): restarting won't help."""


def _die_with_parent() -> None:
    # In the child, before exec: if the supervisor is killed outright, its edges go too.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Child:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.failures = 0
        self.restart_at = 0.0


def supervise(
    command: list[str],
    workers: int,
    grace_s: float = defaults.STOP_GRACE_S,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run `command` `workers` times until SIGTERM/SIGINT; returns 0 after a clean stop."""
    stop = {"signal": 0, "code": 0}

    def on_signal(signum: int, frame: object) -> None:
        stop["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    children = [_Child(i) for i in range(workers)]
    try:
        while not stop["signal"]:
            now = clock()
            for child in children:
                proc = child.proc
                if proc is not None and proc.poll() is not None:
                    if proc.returncode == CONFIG_ERROR:
                        log.error("edge process %d exited with a configuration error: stopping", child.index)
                        stop["signal"], stop["code"] = signal.SIGTERM, CONFIG_ERROR
                        break
                    ran = now - child.started
                    child.failures = 0 if ran >= STABLE_S else child.failures + 1
                    wait = RESTART_BACKOFF_S[min(child.failures, len(RESTART_BACKOFF_S) - 1)]
                    log.warning(
                        "edge process %d (pid %d) exited with %s after %.1fs; restarting in %.1fs",
                        child.index,
                        proc.pid,
                        proc.returncode,
                        ran,
                        wait,
                    )
                    child.proc, child.restart_at = None, now + wait
                if child.proc is None and now >= child.restart_at and not stop["signal"]:
                    child.proc = subprocess.Popen(command, preexec_fn=_die_with_parent)
                    child.started = now
                    log.info("edge process %d started (pid %d)", child.index, child.proc.pid)
            time.sleep(0.1)
        log.info("supervisor: %s, stopping %d edge process(es)", signal.Signals(stop["signal"]).name, workers)
        running = [c.proc for c in children if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = clock() + grace_s + 5
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - clock()))
            except subprocess.TimeoutExpired:
                log.warning("edge pid %d did not stop in time: killing it", proc.pid)
                proc.kill()
                proc.wait()
        return stop["code"]
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
