# SPDX-License-Identifier: MIT
"""Fixtures for the Python client and worker against a real broker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from zeromesh import Client

from ..conftest import BrokerProcess, scaled, wait_until

HERE = Path(__file__).resolve().parent


@pytest.fixture
def client(broker) -> Client:
    c = Client(broker.endpoint, broker.pub_endpoint, green=False)
    yield c
    c.close()


class WorkerProcess:
    """tests/integration/worker_main.py in a subprocess, recording what it runs to a file."""

    def __init__(self, tmp_path: Path, endpoint: str, args: list[str], label: str) -> None:
        self.record = tmp_path / f"{label}.record"
        self.log_path = tmp_path / f"{label}.log"
        self.label = label
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "worker_main.py"), "--endpoint", endpoint, "--record", str(self.record),
             "--label", label, *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ))

    def lines(self, kind: str) -> list[list[str]]:
        """Recorded lines of `kind` ("start" or "done"), split."""
        try:
            text = self.record.read_text()
        except FileNotFoundError:
            return []
        return [parts[1:] for parts in map(str.split, text.splitlines()) if parts and parts[0] == kind]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=scaled(timeout))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=scaled(5))
        self._log.close()


@pytest.fixture
def worker_process(tmp_path):
    """Start worker_main.py: worker_process(endpoint, "--queue", "q", ..., label="w1")."""
    procs: list[WorkerProcess] = []

    def start(endpoint: str, *args: str, label: str = "wp") -> WorkerProcess:
        p = WorkerProcess(tmp_path, endpoint, list(args), label)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.close()


def wait_registered(client: Client, label: str, timeout: float = 10.0) -> dict:
    """Until the broker lists a worker with this label."""
    def find():
        return next((w for w in client.status()["workers"] if w["label"] == label), None)
    return wait_until(find, timeout, interval=0.05, message=f"worker {label} registered")


def restart_on_same_ports(broker_factory, old: BrokerProcess, **kw) -> BrokerProcess:
    """A new broker process bound where `old` was (old must be dead)."""
    new = broker_factory(start=False, **kw)
    new.port, new.pub_port = old.port, old.pub_port
    new.endpoint, new.pub_endpoint = old.endpoint, old.pub_endpoint
    new.log_path = old.tmp_path / f"broker-{old.port}-restarted.log"
    return new.start()


__all__ = ["WorkerProcess", "restart_on_same_ports", "signal", "wait_registered"]
