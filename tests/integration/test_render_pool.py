# SPDX-License-Identifier: MIT
"""Worker(pool="gevent") in a patched subprocess: many handlers at once, heartbeats under a CPU-bound greenlet."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import zmq

from zeromesh.protocol import codec, wire

from ..conftest import scaled
from .conftest import wait_registered

HERE = Path(__file__).resolve().parent


def test_two_hundred_sleeping_requests_run_a_hundred_at_a_time(broker, client, green_worker, zsocket):
    green_worker(broker.endpoint, "--concurrency", "100", label="napper")
    wait_registered(client, "napper")
    sock = zsocket(zmq.DEALER)
    sock.connect(broker.endpoint)
    ids = [f"nap-{i}" for i in range(200)]
    started = time.monotonic()
    for rid in ids:
        sock.send_multipart(codec.pack_item(wire.REQUEST, {"id": rid, "service": "nap", "timeout_ms": 10_000}, b"0.2"))
    answered: dict[str, bytes] = {}
    deadline = started + scaled(10)
    while len(answered) < len(ids) and time.monotonic() < deadline:
        if sock.poll(100):
            env = codec.unpack(sock.recv_multipart())
            assert env.command == wire.REPLY, env.header
            for header, body in env.items:
                answered[header["re"]] = body
    elapsed = time.monotonic() - started
    assert len(answered) == 200 and set(answered.values()) == {b"0.2"}
    # 100 greenlets at once: two waves of 0.2 s. Handler threads (4) would take 10 s.
    assert elapsed < scaled(2.5), f"200 x 0.2 s took {elapsed:.2f}s"


def test_cpu_bound_greenlet_does_not_get_the_worker_declared_dead(broker, client, green_worker):
    green_worker(broker.endpoint, "--concurrency", "10", label="burner")
    first = wait_registered(client, "burner")
    result: dict[str, object] = {}

    def call() -> None:
        try:
            result["reply"] = client.request("burn", b"5.0", timeout=scaled(20))
        except Exception as exc:  # reported by the assertion below
            result["error"] = exc

    # A thread-mode Client keeps one socket per thread: the request thread has its own.
    caller = threading.Thread(target=call)
    caller.start()
    worst_idle = 0.0
    end = time.monotonic() + scaled(12)
    while caller.is_alive() and time.monotonic() < end:
        mine = [w for w in client.status()["workers"] if w["label"] == "burner"]
        assert [w["peer"] for w in mine] == [first["peer"]], "the worker was dropped or registered again"
        worst_idle = max(worst_idle, mine[0]["idle_s"])
        time.sleep(0.2)
    caller.join(timeout=scaled(10))
    assert "error" not in result, result
    assert str(result["reply"]).startswith("b'burnt"), result
    # The broker drops a worker after 3 silent heartbeat intervals (1 s each).
    assert worst_idle < 2.0, f"the broker heard nothing from the worker for {worst_idle}s"
    assert client.request("ping", b"", timeout=scaled(5)) == b"pong"


def test_gevent_pool_refuses_an_unpatched_process(broker, tmp_path):
    out = subprocess.run(
        [sys.executable, str(HERE / "render_green_main.py"), "--endpoint", broker.endpoint, "--unpatched"],
        capture_output=True,
        text=True,
        timeout=scaled(20),
    )
    assert out.returncode == 3, out.stdout + out.stderr
    assert "monkey.patch_all()" in out.stderr
