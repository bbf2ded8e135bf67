# SPDX-License-Identifier: MIT
"""CURVE seen from outside the Python client: nothing readable on the wire, a broker that keeps
serving keyed clients under hostile unauthenticated traffic, the CLI, a gevent worker process,
and the edge with a render node, configured by the environment alone."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import threading
import time

import pytest

import zeromesh
from zeromesh import AuthenticationError

from ..conftest import ROOT, scaled, wait_until
from ..curve_keys import KeySet
from ..processes import ChildProcess
from .edge_helpers import TCPProxy
from .render_helpers import TEST_SITE, TEST_TEMPLATES

pytestmark = pytest.mark.timeout(120)

HERE = os.path.dirname(__file__)


@pytest.fixture
def keys(tmp_path):
    return KeySet(tmp_path / "keys")


@pytest.fixture
def secure_broker(broker_factory, keys):
    return broker_factory(args=keys.broker_args(), curve=keys.curve("everything"))


def curve(keys: KeySet, name: str) -> dict:
    return {"curve_server": str(keys.broker_public), "curve_secret": keys.secret(name)}


class RecordingProxy(TCPProxy):
    """The loopback relay of the edge tests, keeping a copy of every byte it carries."""

    def __init__(self, target_port: int) -> None:
        self.seen = bytearray()
        self.seen_lock = threading.Lock()
        super().__init__(target_port)

    def _carried(self, data: bytes) -> None:
        with self.seen_lock:
            self.seen += data

    def recorded(self) -> bytes:
        with self.seen_lock:
            return bytes(self.seen)


@pytest.mark.parametrize("secured", [True, False], ids=["curve", "plain"])
def test_a_body_is_unreadable_on_the_wire_with_curve_and_readable_without(broker_factory, keys, secured):
    if secured:
        broker = broker_factory(args=keys.broker_args(), curve=keys.curve("everything"))
        settings = curve(keys, "everything")
    else:
        broker = broker_factory()
        settings = {}
    body = secrets.token_hex(16).encode()  # 32 hex characters nobody else sends
    worker = zeromesh.Worker(broker.endpoint, concurrency=1, **settings)
    worker.handler("echo")(lambda job: job.body)
    worker.handler("jobs")(lambda job: None)
    worker.start()
    proxy = RecordingProxy(broker.port)
    try:
        assert worker.wait_ready(scaled(5))
        with zeromesh.Client(proxy.endpoint, green=False, **settings) as c:
            c.push("jobs", body)
            assert c.request("echo", body, timeout=5) == body
        recorded = proxy.recorded()
        assert len(recorded) > 2 * len(body)  # the relay did carry the traffic
        assert (body in recorded) is not secured
    finally:
        proxy.close()
        worker.stop(grace=1)


def _hostile(port: int, stop: threading.Event, kind: str, counts: dict) -> None:
    """Open and close connections to the broker until stopped: garbage, or a ZMTP 3 greeting with NULL."""
    greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL" + b"\x00" * 16 + b"\x00" + b"\x00" * 31
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if kind == "garbage":
                    s.sendall(os.urandom(64))
                elif kind == "null":
                    s.sendall(greeting)
                    with contextlib.suppress(OSError):
                        s.recv(64)
            counts[kind] = counts.get(kind, 0) + 1
        except OSError:
            counts["errors"] = counts.get("errors", 0) + 1


def test_keyed_clients_are_served_under_hostile_unauthenticated_traffic(secure_broker, keys):
    worker = zeromesh.Worker(secure_broker.endpoint, concurrency=2, **curve(keys, "worker"))
    worker.handler("echo")(lambda job: job.body)
    worker.start()
    stop = threading.Event()
    counts: dict = {}
    attackers = [
        threading.Thread(target=_hostile, args=(secure_broker.port, stop, kind, counts), daemon=True)
        for kind in ("garbage", "null", "churn", "garbage", "null")
    ]
    try:
        assert worker.wait_ready(scaled(5))
        for t in attackers:
            t.start()
        with zeromesh.Client(secure_broker.endpoint, green=False, **curve(keys, "producer")) as c:
            deadline = time.monotonic() + scaled(4)
            done = 0
            while time.monotonic() < deadline or sum(counts.values()) < 300:
                started = time.monotonic()
                assert c.request("echo", str(done), timeout=2) == str(done).encode()
                assert time.monotonic() - started < 2
                done += 1
                assert time.monotonic() < deadline + scaled(20), counts
        stop.set()
        for t in attackers:
            t.join(scaled(5))
        assert secure_broker.running
        with zeromesh.Client(secure_broker.endpoint, green=False, **curve(keys, "admin")) as admin:
            counters = admin.status()["counters"]
        failed = sum(v for k, v in counters.items() if k.startswith("handshake_failed."))
        assert failed >= 50, (counters, counts)
        assert done >= 10 and sum(counts.values()) >= 300, (done, counts)
    finally:
        stop.set()
        worker.stop(grace=1)


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zeromesh", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(30),
    )


def test_the_cli_uses_the_curve_environment_and_reports_a_refusal(secure_broker, keys):
    env = dict(secure_broker.env)  # ZEROMESH_CURVE_* of the "everything" key
    pushed = _cli(env, "push", "cli-jobs", "hello")
    assert pushed.returncode == 0, pushed.stderr
    status = _cli(env, "status", "--json")
    assert status.returncode == 0 and "cli-jobs" in status.stdout, status.stderr
    env["ZEROMESH_CURVE_SECRET"] = keys.stranger()
    started = time.monotonic()
    refused = _cli(env, "push", "cli-jobs", "hello")
    assert refused.returncode != 0
    assert f"authentication refused by the broker at {secure_broker.endpoint}: key not allowed" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert time.monotonic() - started < scaled(10)  # a process start, and a refusal within ~2 s
    env["ZEROMESH_CURVE_SECRET"] = str(keys.root / "missing.key_secret")
    unusable = _cli(env, "status")
    assert unusable.returncode != 0 and "missing.key_secret" in unusable.stderr and "Traceback" not in unusable.stderr
    assert "ZEROMESH_CURVE_SECRET" in _cli(env, "push", "--help").stdout


def _green_worker(tmp_path, broker, secret: str, label: str, wait: bool) -> ChildProcess:
    env = dict(broker.env)
    env["ZEROMESH_CURVE_SECRET"] = secret
    p = ChildProcess(
        label,
        [sys.executable, os.path.join(HERE, "render_green_main.py"), "--endpoint", broker.endpoint, "--label", label],
        tmp_path / f"{label}.log",
        env=env,
    )
    return p.start(wait=wait)


def test_a_gevent_worker_serves_with_its_key_and_exits_on_a_refusal(tmp_path, secure_broker, keys):
    served = _green_worker(tmp_path, secure_broker, keys.secret("worker"), "green-keyed", wait=False)
    refused = _green_worker(tmp_path, secure_broker, keys.stranger(), "green-stranger", wait=False)
    try:
        with zeromesh.Client(secure_broker.endpoint, green=False, **curve(keys, "producer")) as c:
            assert c.request("ping", b"hi", timeout=10, wait=True) == b"pong"
        wait_until(lambda: not refused.running, scaled(10), message="the refused worker exits")
        assert refused.returncode != 0
        log = refused.log()
        assert f"authentication refused by the broker at {secure_broker.endpoint}: key not allowed" in log
        assert log.count("ERROR zeromesh.worker authentication refused") == 1, log
    finally:
        served.stop()
        refused.stop()


def test_the_edge_and_a_render_node_serve_a_page_through_a_secured_mesh(secure_broker, keys, edge_factory, tmp_path):
    env = dict(secure_broker.env)  # the "everything" key: a node is a worker, a producer and a subscriber
    node = ChildProcess(
        "render-keyed",
        [
            sys.executable,
            "-m",
            "zeromesh",
            "node",
            "render",
            "--label",
            "render-keyed",
            "--templates",
            str(TEST_TEMPLATES),
            "--site-module",
            str(TEST_SITE),
        ],
        tmp_path / "render-keyed.log",
        env={**env, "ZEROMESH_REDIS_URL": "none"},
        cwd=ROOT,
    ).start(wait=False)
    try:
        routes = '[[route]]\nname = "plain"\npath = "/hello/{name}"\nservice = "render"\ntemplate = "plain.html"\n'
        edge = edge_factory(routes, on=secure_broker)
        page = wait_until(lambda: (r := edge.get("/hello/mesh")).status == 200 and r, scaled(10))
        assert page.text.startswith("hello mesh")
        # The same edge without a key is refused by the broker and never ready.
        stranger = edge_factory(routes, on=secure_broker, env={"ZEROMESH_CURVE_SECRET": keys.stranger()}, start=False)
        stranger.start(wait=False)
        time.sleep(scaled(2))
        assert not stranger.answers_ready()
        assert "authentication refused by the broker" in stranger.log()
    finally:
        node.stop()


def test_a_client_with_one_setting_only_is_refused_at_construction(secure_broker, keys, monkeypatch):
    monkeypatch.delenv("ZEROMESH_CURVE_SERVER", raising=False)
    monkeypatch.delenv("ZEROMESH_CURVE_SECRET", raising=False)
    with pytest.raises(ValueError, match="ZEROMESH_CURVE_SERVER"):
        zeromesh.Client(secure_broker.endpoint, curve_secret=keys.secret("producer"))
    with pytest.raises(ValueError, match="ZEROMESH_CURVE_SECRET"):
        zeromesh.Worker(secure_broker.endpoint, curve_server=str(keys.broker_public))
    with pytest.raises(ValueError, match="ZEROMESH_CURVE_SERVER"):
        zeromesh.Client(secure_broker.endpoint, curve_server="not-a-key", curve_secret=keys.secret("producer"))
    assert not isinstance(AuthenticationError("x"), ValueError)
