# SPDX-License-Identifier: MIT
"""The client under gevent, and client and worker across a broker restart."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import zeromesh
from zeromesh import Job

from ..conftest import scaled
from .conftest import restart_on_same_ports, wait_registered

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def echo(job: Job) -> bytes:
    return job.body


def test_gevent_client_in_a_patched_process(broker, start_worker):
    start_worker(broker.endpoint, {"echo": echo}, concurrency=4)
    script = Path(__file__).with_name("gevent_main.py")
    out = subprocess.run(
        [sys.executable, str(script), broker.endpoint], capture_output=True, text=True, timeout=scaled(40)
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok"), out.stdout


def test_client_and_worker_survive_a_broker_restart(broker_factory, start_worker):
    old = broker_factory()
    client = zeromesh.Client(old.endpoint, old.pub_endpoint, green=False)
    try:
        start_worker(old.endpoint, {"echo": echo}, label="survivor")
        assert client.request("echo", b"before") == b"before"
        sub = client.subscribe("r")
        for _ in range(100):
            client.publish("r", b"x")
            before = sub.next(0.05)
            if before is not None:
                break
        assert before is not None and not before.gap

        old.kill()
        # Down: a request times out instead of hanging; a push keeps resending its id.
        t0 = time.monotonic()
        with pytest.raises(zeromesh.TimeoutError):
            client.request("echo", b"down", timeout=0.3)
        assert time.monotonic() - t0 < scaled(1.5)
        pushed: list[str] = []
        pusher = threading.Thread(target=lambda: pushed.append(client.push("after", b"x", timeout=scaled(15))))
        pusher.start()
        time.sleep(0.3)

        new = restart_on_same_ports(broker_factory, old)
        pusher.join(scaled(15))
        assert pushed and new.running
        assert client.status()["queues"]["after"]["depth"] == 1
        assert client.trace(pushed[0])["state"] == "queued"
        # The worker notices the new epoch and registers again on its own.
        wait_registered(client, "survivor", timeout=10)
        assert client.request("echo", b"after", timeout=scaled(5)) == b"after"
        # A subscriber sees the restart as a gap.
        after = None
        for _ in range(100):
            client.publish("r", b"y")
            after = sub.next(0.05)
            if after is not None and after.epoch != before.epoch:
                break
        assert after is not None and after.epoch != before.epoch and after.gap is True
    finally:
        client.close()


def test_worker_reregisters_after_a_graceful_broker_restart(broker_factory, start_worker):
    old = broker_factory()
    start_worker(old.endpoint, {"echo": echo}, label="patient")
    with zeromesh.Client(old.endpoint, green=False) as client:
        wait_registered(client, "patient")
        old.signal(signal.SIGTERM)  # the broker says DISCONNECT to its workers
        assert old.wait(10) == 0
        restart_on_same_ports(broker_factory, old)
        wait_registered(client, "patient", timeout=10)
        assert client.request("echo", b"ok", timeout=scaled(5)) == b"ok"
