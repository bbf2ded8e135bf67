# SPDX-License-Identifier: MIT
"""Redis under Sentinel, for real: a primary, a replica and three `redis-server --sentinel` on
loopback ports. A client from protocol/redis_url.connect() keeps working once a replica is
promoted after the primary is SIGKILLed, and so does an edge given the redis+sentinel:// URL."""

from __future__ import annotations

import time

import pytest
import redis

from zeromesh.protocol import redis_url

from ..conftest import free_port, redis_server_binary, scaled, wait_until
from ..processes import ChildProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SERVICE = "zmtest"


def _pong(port: int) -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


class SentinelSet:
    """Primary, replica and three sentinels; stop() ends whatever still runs."""

    def __init__(self, tmp_path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[ChildProcess] = []
        self.binary = redis_server_binary()
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.url = (
            f"redis+sentinel://{','.join(f'127.0.0.1:{p}' for p in self.sentinel_ports)}/{SERVICE}?socket_timeout=1"
        )

    def start(self) -> None:
        tmp_path = self.tmp_path
        self.primary = self._server("primary", self.primary_port)
        self.replica = self._server("replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port))
        for i, port in enumerate(self.sentinel_ports):
            conf = tmp_path / f"sentinel-{i}.conf"  # the sentinel rewrites it: its own file, in tmp_path
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 3000\n"
            )
            self._start(f"sentinel-{i}", [self.binary, str(conf), "--sentinel"], tmp_path, port)

    def _server(self, name: str, port: int, *extra: str) -> ChildProcess:
        directory = self.tmp_path / name
        directory.mkdir()
        return self._start(
            name,
            [
                self.binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
                *extra,
            ],
            self.tmp_path,
            port,
        )

    def _start(self, name: str, cmd: list[str], tmp_path, port: int) -> ChildProcess:
        proc = ChildProcess(name, cmd, tmp_path / f"{name}.log", ready=lambda: _pong(port))
        self.procs.append(proc)
        return proc.start()

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()

    def sentinels_know_the_replica(self) -> bool:
        for port in self.sentinel_ports:
            s = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, decode_responses=True)
            try:
                replicas = s.sentinel_slaves(SERVICE)
                if not any(r.get("flags") == "slave" for r in replicas):
                    return False
                if len(s.sentinel_sentinels(SERVICE)) < 2:
                    return False
            except redis.RedisError:
                return False
        info = redis.Redis(host="127.0.0.1", port=self.replica_port, socket_timeout=1).info("replication")
        return info.get("master_link_status") == "up"


@pytest.fixture
def sentinels(tmp_path):
    group = SentinelSet(tmp_path)
    try:
        group.start()
        wait_until(group.sentinels_know_the_replica, 20, 0.2, "the sentinels to see the replica and each other")
        yield group
    finally:
        group.stop()


def _writes_until_ok(client, key: str, limit: float) -> tuple[float, int]:
    """SET key until it succeeds; (seconds taken, errors seen)."""
    t0 = time.monotonic()
    errors_seen = 0
    while True:
        try:
            client.set(key, "1")
            return time.monotonic() - t0, errors_seen
        except (redis.RedisError, OSError):
            errors_seen += 1
            if time.monotonic() - t0 > scaled(limit):
                raise
            time.sleep(0.1)


def test_a_connect_client_follows_a_failover(sentinels):
    client = redis_url.connect(sentinels.url, socket_connect_timeout=1.0)
    client.set("before", "kept")
    assert client.get("before") == b"kept"
    time.sleep(0.5)  # let the replica take the write
    sentinels.primary.kill()
    killed_at = time.monotonic()
    took, errors_seen = _writes_until_ok(client, "after", 40)
    port = client.connection_pool.get_master_address()[1]
    print(
        f"writes work again {took:.2f}s after SIGKILL of the primary ({errors_seen} errors before); "
        f"the primary is now on port {port}"
    )
    assert port == sentinels.replica_port
    assert client.get("before") == b"kept" and client.get("after") == b"1"
    assert time.monotonic() - killed_at < scaled(40)


def test_the_edge_follows_a_failover(sentinels, broker, edge_factory):
    seed = redis_url.connect(sentinels.url)
    seed.hset("zeromesh:features", "recommendations", "off")
    edge = edge_factory(None, env={"ZEROMESH_REDIS_URL": sentinels.url})
    ready = edge.get("/readyz")
    assert ready.status == 200 and b'"redis": "up"' in ready.body.replace(b'":"', b'": "'), ready.body
    time.sleep(0.5)
    sentinels.primary.kill()
    killed_at = time.monotonic()
    # Readiness says Redis is down while no primary answers, then up again once a replica is promoted.
    wait_until(lambda: edge.get("/readyz", timeout=5).status == 503, 10, 0.1, "the edge to notice Redis down")
    wait_until(lambda: edge.get("/readyz", timeout=5).status == 200, 40, 0.2, "the edge ready again")
    print(f"edge ready again {time.monotonic() - killed_at:.2f}s after SIGKILL of the primary")
    assert redis_url.connect(sentinels.url).hget("zeromesh:features", "recommendations") == b"off"
