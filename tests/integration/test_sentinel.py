# SPDX-License-Identifier: MIT
"""Redis under Sentinel, for real: a primary, a replica and three `redis-server --sentinel` on
loopback ports. A client from protocol/redis_url.connect() keeps working once a replica is
promoted after the primary is SIGKILLed, and so does an edge given the redis+sentinel:// URL."""

from __future__ import annotations

import time

import pytest
import redis

from zeromesh.protocol import redis_url

from ..conftest import scaled, wait_until
from .sentinel_helpers import SentinelSet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def sentinels(tmp_path):
    group = SentinelSet(tmp_path)
    try:
        group.start()
        wait_until(group.sentinels_know_the_replicas, 20, 0.2, "the sentinels to see the replica and each other")
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
