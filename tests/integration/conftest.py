# SPDX-License-Identifier: MIT
"""Fixtures of the integration tests: a client of the test's broker, and the processes around it
(worker_main.py workers, gevent workers, edges, render nodes and demo workers)."""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from zeromesh import Client

from ..conftest import ROOT, BrokerProcess, scaled, wait_until
from ..processes import ChildProcess
from .edge_helpers import EdgeProcess

HERE = Path(__file__).resolve().parent

ISOLATED_ENV = "ZEROMESH_ISOLATED_RUN"
ISOLATED = ["test_green_client_batching.py", "test_gather_wakes.py"]
"""Tests that run greenlets in the test process's own gevent hub: collected only in the fresh
pytest process test_green_hub_isolated.py starts (why: its docstring)."""
collect_ignore = [] if os.environ.get(ISOLATED_ENV) else ISOLATED


def run_counter(pause: float):
    """A job handler that sleeps `pause` s, then counts the job's body; and the count (body -> runs)."""
    runs: collections.Counter[bytes] = collections.Counter()
    lock = threading.Lock()

    def handle(job):
        time.sleep(pause)
        with lock:
            runs[job.body] += 1

    return handle, runs


def wait_each_ran(runs: collections.Counter, total: int, timeout: float, settle: float = 1.0) -> int:
    """Wait until `total` different jobs ran (saying how many are missing if they do not), then
    `settle` s more, for a job run again to show; returns how many jobs ran more than once."""
    wait_until(
        lambda: len(runs) == total,
        scaled(timeout),
        interval=0.1,
        message=lambda: f"every job run ({total - len(runs)} missing)",
    )
    time.sleep(settle)
    return sum(1 for n in runs.values() if n > 1)


@pytest.fixture
def client(broker) -> Client:
    c = Client(broker.endpoint, broker.pub_endpoint, green=False)
    yield c
    c.close()


class WorkerProcess(ChildProcess):
    """tests/integration/worker_main.py in a subprocess, recording what it runs to a file."""

    def __init__(self, tmp_path: Path, endpoint: str, args: list[str], label: str) -> None:
        self.record = tmp_path / f"{label}.record"
        self.label = label
        super().__init__(
            label,
            [
                sys.executable,
                str(HERE / "worker_main.py"),
                "--endpoint",
                endpoint,
                "--record",
                str(self.record),
                "--label",
                label,
                *args,
            ],
            tmp_path / f"{label}.log",
        )

    def lines(self, kind: str) -> list[list[str]]:
        """Recorded lines of `kind` ("start" or "done"), split."""
        try:
            text = self.record.read_text()
        except FileNotFoundError:
            return []
        return [parts[1:] for parts in map(str.split, text.splitlines()) if parts and parts[0] == kind]


@pytest.fixture
def worker_process(tmp_path):
    """Start worker_main.py: worker_process(endpoint, "--queue", "q", ..., label="w1"); killed after the test."""
    procs: list[WorkerProcess] = []

    def start(endpoint: str, *args: str, label: str = "wp") -> WorkerProcess:
        p = WorkerProcess(tmp_path, endpoint, list(args), label)
        procs.append(p)
        return p.start()

    yield start
    for p in procs:
        p.kill()


@pytest.fixture
def green_worker(tmp_path):
    """Start render_green_main.py (a Worker(pool="gevent") in a patched process):
    green_worker(endpoint, "--concurrency", "3", ..., label="g1")."""
    procs: list[ChildProcess] = []

    def start(endpoint: str, *args: str, label: str = "green") -> ChildProcess:
        p = ChildProcess(
            label,
            [sys.executable, str(HERE / "render_green_main.py"), "--endpoint", endpoint, "--label", label, *args],
            tmp_path / f"{label}.log",
        )
        procs.append(p)
        return p.start()

    yield start
    for p in procs:
        p.stop(timeout=5)


@pytest.fixture
def edge_factory(tmp_path, request):
    """edge_factory(routes_text, env=..., args=..., on=other_broker, start=False) -> an EdgeProcess,
    started (and ready) unless start=False. Without `on`, on the test's `broker` (made only then:
    a second broker of the default name on the same Redis would be refused)."""
    started: list[EdgeProcess] = []

    def make(routes_text: str | None = None, *, on=None, start: bool = True, **kw) -> EdgeProcess:
        e = EdgeProcess(
            tmp_path, on or request.getfixturevalue("broker"), routes_text, label=f"edge{len(started)}", **kw
        )
        started.append(e)
        return e.start() if start else e

    yield make
    for e in started:
        e.stop()


@pytest.fixture
def mesh_env(broker, redis_server) -> dict[str, str]:
    """The environment a process needs to join the test's mesh (broker and Redis)."""
    env = dict(os.environ)
    env.update(ZEROMESH_BROKER=broker.endpoint, ZEROMESH_PUB=broker.pub_endpoint, ZEROMESH_REDIS_URL=redis_server.url)
    return env


@pytest.fixture
def spawn(tmp_path, mesh_env, client):
    """spawn(kind, label, *args): start "render" (a render node), "demo" (demo workers) or "green"
    (render_green_main.py) and wait until the broker lists it (wait=False: do not wait)."""
    procs: list[ChildProcess] = []

    def start(kind: str, label: str, *args: str, wait: bool = True) -> ChildProcess:
        if kind == "render":
            cmd = [sys.executable, "-m", "zeromesh", "node", "render", "--label", label, *args]
        elif kind == "demo":
            cmd = [sys.executable, "-m", "zeromesh.nodes.demo.workers", "--label", label, *args]
        elif kind == "green":
            cmd = [
                sys.executable,
                str(HERE / "render_green_main.py"),
                "--endpoint",
                mesh_env["ZEROMESH_BROKER"],
                "--label",
                label,
                *args,
            ]
        else:
            raise ValueError(kind)
        p = ChildProcess(
            label, cmd, tmp_path / f"{label}.log", env=mesh_env, cwd=ROOT, ready=lambda: is_registered(client, label)
        )
        procs.append(p)
        return p.start(wait=wait, timeout=15)

    yield start
    for p in procs:
        p.stop()


def is_registered(client: Client, label: str) -> bool:
    """Whether the broker lists a worker with this label."""
    return any(w["label"] == label for w in client.status()["workers"])


def wait_registered(client: Client, label: str, timeout: float = 10.0) -> dict:
    """Until the broker lists a worker with this label; its status entry."""

    def find():
        return next((w for w in client.status()["workers"] if w["label"] == label), None)

    return wait_until(find, timeout, interval=0.05, message=f"worker {label} registered")


def restart_on_same_ports(broker_factory, old: BrokerProcess, **kw) -> BrokerProcess:
    """A new broker process bound where `old` was (old must be dead)."""
    return broker_factory(ports=(old.port, old.pub_port), log_name=f"broker-{old.port}-restarted.log", **kw)


__all__ = ["WorkerProcess", "is_registered", "restart_on_same_ports", "wait_registered"]
