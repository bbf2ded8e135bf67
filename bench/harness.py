# SPDX-License-Identifier: MIT
"""What every scenario needs: free ports, a real broker process, spawned children, statistics."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

BODY_SIZE = 100
"""Every scenario moves 100-byte bodies (the issue's figure)."""

SPAWN = multiprocessing.get_context("spawn")
"""Children start from a fresh interpreter: no inherited sockets, threads or zmq contexts."""

_CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A run that could not produce a number (a child failed, a deadline passed)."""


def body() -> bytes:
    return b"x" * BODY_SIZE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc, 1/CLK_TCK resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        # Field 2 (comm) may hold spaces; everything after the last ')' is space-separated.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return float("nan")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def recv_within(conn: Connection, timeout: float, what: str) -> Any:
    """The next object a child sends, or BenchError if none comes in time (or the child sent one)."""
    if not conn.poll(timeout):
        raise BenchError(f"no {what} within {timeout:g}s")
    value = conn.recv()
    if isinstance(value, BaseException):
        raise BenchError(f"{what}: child failed: {value!r}")
    return value


def start_child(target: Callable[..., None], *args: Any) -> tuple[multiprocessing.process.BaseProcess, Connection]:
    """Spawn target(conn, *args) in a fresh process; returns it and our end of its pipe."""
    ours, theirs = SPAWN.Pipe()
    proc = SPAWN.Process(target=_child_entry, args=(target, theirs, args), daemon=True)
    proc.start()
    theirs.close()
    return proc, ours


def pid_of(proc: multiprocessing.process.BaseProcess) -> int:
    """The pid of a started child (typed: BaseProcess.pid is Optional until start())."""
    assert proc.pid is not None
    return proc.pid


def _child_entry(target: Callable[..., None], conn: Connection, args: tuple) -> None:
    try:
        target(conn, *args)
    except BaseException as exc:  # hand the failure to the parent instead of a traceback on stderr only
        try:
            conn.send(BenchError(f"{target.__name__}: {type(exc).__name__}: {exc}"))
        except Exception:
            pass
        raise


def parent_alive() -> bool:
    """In a spawned child: False once the bench process is gone (so orphans exit on their own)."""
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


def _die_with_parent() -> None:
    """preexec_fn for Popen: SIGTERM the child when we die, even by SIGKILL (Linux prctl)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def machine_busy(seconds: float = 0.5) -> float:
    """Fraction of all CPUs busy over `seconds` (from /proc/stat), whoever uses them."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def _cpu_counters() -> tuple[float, float]:
    """(seconds all CPUs were not idle incl. steal, seconds this process and its reaped children used)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    guest = sum(values[8:10]) if len(values) > 9 else 0  # already counted in user and nice
    t = os.times()
    return (sum(values) - idle - guest) / _CLK_TCK, t.user + t.system + t.children_user + t.children_system


def measure_foreign(run: Callable[[], Any]) -> tuple[Any, float]:
    """run() and the share of all CPUs (0..1) that other programs (or the hypervisor) took meanwhile.

    Our own CPU is this process plus its children, which every scenario has joined before it
    returns; whatever else kept the CPUs busy was someone else's, and skews the numbers.
    """
    busy0, ours0 = _cpu_counters()
    t0 = time.monotonic()
    result = run()
    busy1, ours1 = _cpu_counters()
    wall = time.monotonic() - t0
    foreign = max(0.0, (busy1 - busy0) - (ours1 - ours0)) / (wall * (os.cpu_count() or 1))
    return result, foreign


def stop_children(procs: Sequence[multiprocessing.process.BaseProcess], timeout: float = 5.0) -> None:
    """Join children; terminate, then kill, what does not exit by the deadline."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
            proc.join(2.0)
        if proc.is_alive():
            proc.kill()
            proc.join(2.0)


class Broker:
    """`python -m zeromesh broker` as a subprocess on free loopback ports, logs to a temp file.

    Queues stay in memory: ZEROMESH_REDIS_URL=none keeps the broker from starting or
    using Redis, so this measures issue 2's broker, not the durable path.

    `wrap` goes between the interpreter and `-m zeromesh` (profile.py sets it to run the broker
    under cProfile, e.g. ["-m", "cProfile", "-o", "broker.prof"]).
    """

    wrap: list[str] = []
    extra_args: list[str] = []
    """Broker flags every bench broker gets (curve.py: --curve-secret, --curve-clients)."""

    def __init__(self, config_text: str | None = None, log_level: str = "WARNING") -> None:
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""
        self.pub_endpoint = ""
        self._log = tempfile.NamedTemporaryFile(prefix="zeromesh-bench-broker-", suffix=".log", delete=False)
        self._config: str | None = None
        if config_text is not None:
            with tempfile.NamedTemporaryFile("w", prefix="zeromesh-bench-", suffix=".toml", delete=False) as f:
                f.write(config_text)
            self._config = f.name

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 10.0) -> Broker:
        for _ in range(3):  # a free port can be taken between our probe and the broker's bind
            self.endpoint = f"tcp://127.0.0.1:{free_port()}"
            self.pub_endpoint = f"tcp://127.0.0.1:{free_port()}"
            cmd = [
                sys.executable,
                *self.wrap,
                "-m",
                "zeromesh",
                "--log-level",
                self.log_level,
                "broker",
                "--endpoint",
                self.endpoint,
                "--pub",
                self.pub_endpoint,
            ]
            if self._config:
                cmd += ["--config", self._config]
            cmd += self.extra_args
            env = {**os.environ, "ZEROMESH_REDIS_URL": "none"}
            self.proc = subprocess.Popen(
                cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
            )
            if self._wait_ready(timeout):
                return self
        raise BenchError(f"broker did not start; see {self._log.name}")

    def _wait_ready(self, timeout: float) -> bool:
        from zeromesh import Client

        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with Client(self.endpoint, self.pub_endpoint, green=False) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False
                try:
                    client.ping(timeout=0.5)
                    return True
                except Exception:
                    continue
        self.stop()
        return False

    def status(self) -> dict:
        from zeromesh import Client

        with Client(self.endpoint, self.pub_endpoint, green=False) as client:
            return client.status()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        self.stop()
        self._log.close()
        if self.proc is not None and self.proc.returncode == 0:
            os.unlink(self._log.name)  # keep the log only when something went wrong
        if self._config:
            os.unlink(self._config)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
