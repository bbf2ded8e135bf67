# SPDX-License-Identifier: MIT
"""Running the edge: /healthz and /metrics, --workers N on one port, route-table errors, a clean stop,
and a service worker killed under load with every request still answered."""

from __future__ import annotations

import email.utils
import json
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from zeromesh import Client

from ..conftest import RedisServer, scaled, wait_until
from .edge_helpers import fetch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROUTES = """
[[route]]
name = "work"
path = "/work"
service = "work"
timeout_s = 2

[[route]]
name = "cached"
path = "/cached"
service = "cached"
cache_ttl_s = 300
"""


def test_healthz_and_metrics(broker, edge_factory):
    edge = edge_factory(ROUTES)
    r = edge.get("/healthz")
    assert r.status == 200 and json.loads(r.body)["status"] == "alive"
    edge.get("/nowhere")
    r = edge.get("/metrics")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=")
    m = edge.metrics()
    assert m['zeromesh_edge_requests_total{route="-",status="404"}'] == 1
    assert m['zeromesh_edge_requests_total{route="healthz",status="200"}'] >= 1
    assert 'zeromesh_edge_request_duration_seconds_bucket{le="0.005",route="-"}' in m
    for kind in ("hit", "miss", "stale"):
        assert f'zeromesh_edge_cache_total{{result="{kind}"}}' in m
    assert 'zeromesh_edge_errors_total{kind="timeout"}' in m


def test_readiness_says_what_is_degraded(tmp_path, broker_factory, start_worker, edge_factory):
    # A Redis of this test's own, so that stopping it leaves the session's alone.
    redis = RedisServer(tmp_path / "own-redis").start()
    try:
        broker = broker_factory(env={"ZEROMESH_REDIS_URL": redis.url})
        edge = edge_factory(ROUTES, on=broker)
        ready = edge.get("/readyz")
        body = json.loads(ready.body)
        assert (ready.status, body["status"], body["broker"], body["redis"]) == (200, "degraded", "up", "up")
        assert body["services"] == {"cached": 0, "work": 0}
        assert body["degraded"] == ["service cached: no worker", "service work: no worker"]
        assert ready.headers["content-type"] == "application/json"
        start_worker(broker.endpoint, {"work": lambda job: b"", "cached": lambda job: b""})
        body = json.loads(edge.get("/readyz").body)
        assert (body["status"], body["services"], body["degraded"]) == ("ready", {"cached": 1, "work": 1}, [])

        redis.stop()  # Redis really down: not ready, and the body says why
        started = time.monotonic()
        r = edge.get("/readyz")
        body = json.loads(r.body)
        assert (r.status, body["status"], body["broker"], body["redis"]) == (503, "not ready", "up", "down"), body
        assert body["degraded"][0].startswith("redis: ")
        assert time.monotonic() - started < scaled(3)
        assert edge.get("/healthz").status == 200  # the process itself is alive
    finally:
        redis.stop()
    broker.kill()  # the broker really down too
    started = time.monotonic()
    r = edge.get("/readyz")
    body = json.loads(r.body)
    assert (r.status, body["status"], body["broker"], body["redis"]) == (503, "not ready", "down", "down"), body
    assert [line.split(":")[0] for line in body["degraded"]] == ["broker", "redis"]
    assert time.monotonic() - started < scaled(3)
    assert edge.get("/healthz").status == 200
    assert edge.metric("zeromesh_edge_requests_total", route="readyz", status="503") == 2


def test_date_header_and_access_log_only_when_asked(broker, edge_factory):
    quiet = edge_factory(ROUTES)
    loud = edge_factory(ROUTES, args=["--access-log"])
    for edge in (quiet, loud):
        r = edge.get("/nowhere-at-all")
        assert r.status == 404
        # Current, though formatted once a second rather than once a response.
        sent = email.utils.parsedate_to_datetime(r.headers["date"]).timestamp()
        assert abs(sent - time.time()) < 5
    wait_until(lambda: "/nowhere-at-all" in loud.log(), 5, message="an access line for the request")
    assert "/nowhere-at-all" not in quiet.log()


def test_bad_route_table_is_refused_with_a_clear_message(broker, edge_factory):
    edge = edge_factory('[[route]]\nname = "x"\npath = "/x"\nservice = "a"\nqueue = "b"\n', start=False)
    edge.start(wait=False)
    assert edge.wait(10) == 2
    assert "route #1 ('x'): give exactly one of service (request/reply), queue (push) or topic (publish)" in edge.log()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_port_is_named_and_ends_the_edge_at_once(broker, edge_factory, workers):
    edge = edge_factory(ROUTES, start=False, args=["--workers", workers])
    with socket.socket() as taken:  # another program holds the edge's port (no SO_REUSEPORT)
        taken.bind(("127.0.0.1", edge.port))
        taken.listen(1)
        started = time.monotonic()
        edge.start(wait=False)
        assert edge.wait(10) == 2
    assert time.monotonic() - started < scaled(5)
    assert f"cannot listen on 127.0.0.1:{edge.port}: Address already in use" in edge.log()


def test_sigterm_stops_cleanly(broker, edge_factory):
    edge = edge_factory(ROUTES)
    assert edge.stop() == 0


def test_workers_share_one_port_and_stop_together(broker, edge_factory):
    edge = edge_factory(ROUTES, args=["--workers", "2"])
    pids: set[int] = set()
    deadline = time.monotonic() + scaled(10)
    while len(pids) < 2:  # each new connection lands on one of the two listening sockets
        pids.add(json.loads(edge.get("/healthz").body)["pid"])
        assert time.monotonic() < deadline, f"only {pids} answered"
    assert edge.pid not in pids  # the parent only supervises

    # A process that dies is replaced.
    victim = pids.pop()
    os.kill(victim, signal.SIGKILL)

    def replaced():
        try:  # a connection that was queued on the dead process's socket is reset: SO_REUSEPORT's price
            seen = {json.loads(edge.get("/healthz").body)["pid"] for _ in range(10)}
        except OSError:
            return False
        return len(seen - {victim} - pids) > 0

    wait_until(replaced, 10, interval=0.1, message="a new edge process")

    assert edge.stop() == 0
    children = subprocess.run(["pgrep", "-P", str(edge.pid)], capture_output=True, text=True).stdout
    assert children.strip() == ""


def test_each_worker_process_has_its_cache_and_all_of_them_invalidate(broker, start_worker, edge_factory):
    start_worker(broker.endpoint, {"cached": lambda job: b"page"})
    edge = edge_factory(ROUTES, args=["--workers", "2"])

    def misses(n: int = 20) -> int:
        # New connections land on either process (probability 2**-19 of never reaching one of them).
        return [edge.get("/cached").cache for _ in range(n)].count("MISS")

    with Client(broker.endpoint, broker.pub_endpoint, green=False) as client:
        # Both processes subscribed: republish a harmless invalidation for a while (the slow joiner).
        end = time.monotonic() + scaled(1.0)
        while time.monotonic() < end:
            client.publish("zeromesh.invalidate.path", "/__warm-up__")
            time.sleep(0.02)
        assert misses() == 2  # one per process
        assert misses() == 0
        client.publish("zeromesh.invalidate.path", "/cached")
        seen = 0
        deadline = time.monotonic() + scaled(5)
        while seen < 2:  # each process drops its copy: one MISS from each
            seen += misses(5)
            assert time.monotonic() < deadline, f"only {seen} process(es) dropped the page"
        assert seen == 2 and misses() == 0


def test_service_worker_killed_under_load_every_request_answered(broker, worker_process, edge_factory):
    worker = worker_process(broker.endpoint, "--queue", "work", "--sleep", "0.05", "--concurrency", "4", label="victim")
    edge = edge_factory(ROUTES)
    wait_until(lambda: edge.get("/work").status == 200, 10, message="the worker serving")

    def one(i: int) -> int:
        try:
            return fetch(edge.port, f"/work?i={i}", timeout=10).status
        except OSError as exc:
            return -1 if "timed out" in str(exc) else -2

    with ThreadPoolExecutor(max_workers=40) as pool:
        futures = [pool.submit(one, i) for i in range(40)]
        time.sleep(0.3)
        worker.signal(signal.SIGKILL)
        # Keep the load on past the broker noticing the dead worker (3 heartbeats).
        end = time.monotonic() + 4.0
        i = 40
        while time.monotonic() < end:
            futures += [pool.submit(one, j) for j in range(i, i + 20)]
            i += 20
            time.sleep(0.2)
        statuses = [f.result(timeout=scaled(20)) for f in futures]
    counts = {s: statuses.count(s) for s in set(statuses)}
    assert set(counts) <= {200, 503, 504}, counts
    assert counts.get(200, 0) > 0 and counts.get(503, 0) > 0, counts
