# SPDX-License-Identifier: MIT
"""`SentinelSet`: Redis under Sentinel for real, a primary, its replicas and three
`redis-server --sentinel`, on one host address (loopback for tests/integration/test_sentinel.py,
the test bridge's address for the machine tests). Its own module so both suites start it the same way."""

from __future__ import annotations

import socket
from pathlib import Path

import redis

from ..conftest import redis_server_binary
from ..processes import ChildProcess

SERVICE = "zmtest"
DOWN_AFTER_MS = 1000
"""How long a primary must be silent before a sentinel calls it down: short, so a test's failover is quick."""


def _port_on(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def pong(host: str, port: int) -> bool:
    try:
        return bool(redis.Redis(host=host, port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


class SentinelSet:
    """A primary, `replicas` replicas and three sentinels on `host`; stop() ends whatever still runs.

    Off loopback, protected mode is off (it refuses other addresses without a password): the
    machine tests' bridge reaches nothing but the test's own namespaces."""

    def __init__(self, tmp_path: Path, host: str = "127.0.0.1", replicas: int = 1) -> None:
        self.tmp_path = tmp_path
        self.host = host
        self.procs: list[ChildProcess] = []
        self.binary = redis_server_binary()
        self.primary_port = _port_on(host)
        self.replica_ports = [_port_on(host) for _ in range(replicas)]
        self.sentinel_ports = [_port_on(host) for _ in range(3)]
        self.url = f"redis+sentinel://{','.join(f'{host}:{p}' for p in self.sentinel_ports)}/{SERVICE}?socket_timeout=1"
        self.replicas: list[ChildProcess] = []

    @property
    def replica_port(self) -> int:
        return self.replica_ports[0]

    @property
    def replica(self) -> ChildProcess:
        return self.replicas[0]

    def _protection(self) -> list[str]:
        return [] if self.host == "127.0.0.1" else ["--protected-mode", "no"]

    def start(self) -> None:
        self.primary = self._server("primary", self.primary_port)
        for i, port in enumerate(self.replica_ports):
            name = "replica" if len(self.replica_ports) == 1 else f"replica-{i + 1}"
            self.replicas.append(self._server(name, port, "--replicaof", self.host, str(self.primary_port)))
        protection = "" if self.host == "127.0.0.1" else "protected-mode no\n"
        for i, port in enumerate(self.sentinel_ports):
            conf = self.tmp_path / f"sentinel-{i}.conf"  # the sentinel rewrites it: its own file, in tmp_path
            conf.write_text(
                f"port {port}\nbind {self.host}\n{protection}dir {self.tmp_path}\n"
                f"sentinel monitor {SERVICE} {self.host} {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 3000\n"
            )
            self._start(f"sentinel-{i}", [self.binary, str(conf), "--sentinel"], port)

    def _server(self, name: str, port: int, *extra: str) -> ChildProcess:
        directory = self.tmp_path / name
        directory.mkdir()
        cmd = [self.binary, "--port", str(port), "--bind", self.host, *self._protection()]
        cmd += ["--save", "", "--appendonly", "no", "--dir", str(directory), *extra]
        return self._start(name, cmd, port)

    def _start(self, name: str, cmd: list[str], port: int) -> ChildProcess:
        proc = ChildProcess(name, cmd, self.tmp_path / f"{name}.log", ready=lambda: pong(self.host, port))
        self.procs.append(proc)
        return proc.start()

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host=self.host, port=port, socket_timeout=1, decode_responses=True)

    def sentinels_know_the_replicas(self) -> bool:
        """Every sentinel sees every replica and the other sentinels, and every replica's link is up."""
        for port in self.sentinel_ports:
            s = self.client(port)
            try:
                replicas = s.sentinel_slaves(SERVICE)
                if sum(1 for r in replicas if r.get("flags") == "slave") < len(self.replica_ports):
                    return False
                if len(s.sentinel_sentinels(SERVICE)) < 2:
                    return False
            except redis.RedisError:
                return False
        for port in self.replica_ports:
            try:
                if self.client(port).info("replication").get("master_link_status") != "up":
                    return False
            except redis.RedisError:
                return False
        return True

    def primary_address(self) -> tuple[str, int] | None:
        """What the first sentinel that answers names as the primary; None if none answers."""
        for port in self.sentinel_ports:
            try:
                host, primary = self.client(port).sentinel_get_master_addr_by_name(SERVICE)
                return str(host), int(primary)
            except (redis.RedisError, TypeError):
                continue
        return None


__all__ = ["DOWN_AFTER_MS", "SERVICE", "SentinelSet", "pong"]
