# SPDX-License-Identifier: MIT
"""Promises the broker keeps when Redis is slow, gone or restarted: one job per id, honest
shutdown reports, and no redelivery caused by a Redis reconnect."""

from __future__ import annotations

import json
import signal
import threading
import time

import msgpack
import pytest
import zmq

from zeromesh import Client
from zeromesh.protocol import codec, wire

from ..conftest import RedisServer, scaled, wait_until
from .conftest import run_counter, wait_each_ran

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _worker_log(start_worker, endpoint, queue, **kw):
    seen: list[tuple[str, int, bytes]] = []
    lock = threading.Lock()

    def handle(job):
        with lock:
            seen.append((job.id, job.attempt, job.body))

    start_worker(endpoint, {queue: handle}, **kw)
    return seen


def test_a_resent_push_is_queued_once_while_its_job_waits_in_redis(broker, start_worker):
    """No worker yet: the job is spilled to Redis. A resend (same id) is confirmed, not queued again."""
    with Client(broker.endpoint, green=False) as client:
        first = client.push("spilled", b"card-1", id="job-one")
        time.sleep(0.1)
        again = client.push("spilled", b"card-1", id="job-one")
        assert first == again == "job-one"
        queue = client.status()["queues"]["spilled"]
        assert queue["depth"] == 1 and queue["in_redis"] == 1, queue
        assert client.status()["counters"]["duplicate_pushes"] == 1
        seen = _worker_log(start_worker, broker.endpoint, "spilled")
        wait_until(lambda: seen, scaled(10), message="the job delivered")
        time.sleep(0.5)
        assert seen == [("job-one", 1, b"card-1")]


def test_a_second_element_with_a_held_id_is_dropped_not_renamed(broker, redis_server, start_worker):
    """Two elements with one id fed to Redis from outside: one job runs, under the producer's id."""
    r = redis_server.client()
    element = json.dumps({"id": "twice", "body": "x"})
    r.rpush("zeromesh:queue:fed", element, element, json.dumps({"id": "other", "body": "y"}))
    seen = _worker_log(start_worker, broker.endpoint, "fed")
    wait_until(lambda: len(seen) >= 2, scaled(10), message="the jobs delivered")
    time.sleep(0.5)
    assert sorted(i for i, _, _ in seen) == ["other", "twice"]
    with Client(broker.endpoint, green=False) as client:
        assert client.status()["counters"]["duplicate_jobs_dropped"] == 1
    wait_until(
        lambda: not r.keys("zeromesh:inflight:fed:*") or not any(r.llen(k) for k in r.keys("zeromesh:inflight:fed:*")),
        scaled(10),
        message="nothing left in flight",
    )
    assert "dropped a second copy of job twice" in broker.log()


def _strict_refusals():
    good = {"id": "bad-1", "queue": "q"}
    nested_int_key = msgpack.packb({"id": "bad-2", "queue": "q", "headers": {1: "x"}})
    bad_utf8 = msgpack.packb({"id": "bad-3", "queue": "q"}).replace(b"\xa1q", b"\xa1\xff")
    return [
        ("trailing byte", "bad-1", msgpack.packb(good) + b"\x00"),
        ("int key in headers", "bad-2", nested_int_key),
        ("bad UTF-8 in queue", "bad-3", bad_utf8),
    ]


@pytest.mark.parametrize("case,jid,header", _strict_refusals(), ids=[c[0] for c in _strict_refusals()])
def test_a_refused_header_names_the_job_when_its_id_can_be_read(broker, zsocket, case, jid, header):
    sock = zsocket(zmq.DEALER)
    sock.connect(broker.endpoint)
    sock.send_multipart([codec.command_frame(wire.PUSH), header, b"body"])
    assert sock.poll(scaled(5) * 1000)
    env = codec.unpack(sock.recv_multipart())
    assert env.command == wire.ERROR and env.header["code"] == wire.E_BAD_HEADER, env
    assert env.header.get("re") == jid, env.header


def _dead_redis_url(tmp_path) -> str:
    return f"unix://{tmp_path}/no-redis-here.sock"


def test_a_broker_without_its_redis_says_so_and_reports_what_a_stop_loses(broker_factory, tmp_path):
    broker = broker_factory("[broker]\nshutdown_grace_s = 1.0\n", env={"ZEROMESH_REDIS_URL": _dead_redis_url(tmp_path)})
    wait_until(lambda: "redis unreachable" in broker.log(), scaled(5), message="a log line about Redis")
    with Client(broker.endpoint, green=False) as client:
        status = client.status()
        assert status["redis"]["up"] is False and "down" in status["redis"]["status"], status["redis"]
        client.push("memory", b"only here")
    broker.signal(signal.SIGTERM)
    rc = broker.wait(15)
    log = broker.log()
    assert rc == 1, log
    assert "job(s) handed back to Redis" not in log
    assert "1 job(s) held only in memory could not be handed back to Redis" in log and "1 job(s) lost" in log


def test_a_stop_waits_for_redis_to_return_and_then_hands_back(broker_factory, tmp_path):
    redis_dir = tmp_path / "late-redis"
    redis_dir.mkdir()
    late = RedisServer(redis_dir)
    broker = broker_factory("[broker]\nshutdown_grace_s = 8.0\n", env={"ZEROMESH_REDIS_URL": late.url})
    with Client(broker.endpoint, green=False) as client:
        client.push("memory", b"keep me")
    broker.signal(signal.SIGTERM)
    time.sleep(1.0)
    late.start()
    try:
        rc = broker.wait(20)
        assert rc == 0, broker.log()
        assert "queue memory: 1 job(s) handed back to Redis" in broker.log()
        assert [json.loads(e)["body"] for e in late.client().lrange("zeromesh:queue:memory", 0, -1)] == ["keep me"]
    finally:
        late.stop()


def test_a_broker_without_redis_says_what_a_stop_drops(broker_factory):
    broker = broker_factory(env={"ZEROMESH_REDIS_URL": "none"})
    with Client(broker.endpoint, green=False) as client:
        client.push("nowhere", b"x")
    broker.signal(signal.SIGTERM)
    assert broker.wait(15) == 1
    assert "queue nowhere: 1 job(s) dropped: no Redis is configured" in broker.log()


def test_redis_restarts_alone_make_no_job_run_twice(broker_factory, tmp_path, start_worker):
    """A durable queue drained while Redis is SIGKILLed and restarted three times (with an
    append-only file, so Redis itself loses nothing): every job runs, and none twice."""
    rdir = tmp_path / "aof-redis"
    rdir.mkdir()
    extra = ["--appendonly", "yes", "--appendfsync", "always"]
    server = RedisServer(rdir, extra=extra).start()
    try:
        broker = broker_factory("[queues.orders]\ndurable = true\n", env={"ZEROMESH_REDIS_URL": server.url})
        total = 3000
        with Client(broker.endpoint, green=False) as client:
            client.push_many("orders", [b"order-%d" % i for i in range(total)])
        slow, runs = run_counter(0.002)
        start_worker(broker.endpoint, {"orders": slow}, concurrency=4, credit=40)
        for _ in range(3):
            wait_until(lambda: sum(runs.values()) > 0, scaled(10), message="progress")
            time.sleep(0.4)
            server.kill()
            time.sleep(0.5)
            server = RedisServer(rdir, extra=extra).start()
        twice = wait_each_ran(runs, total, 60, settle=1.5)
        print(f"redis restarts: {total} confirmed, {len(runs)} handled, {twice} ran twice")
        assert twice == 0
        assert "recovered" not in broker.log()
    finally:
        server.stop()


def test_a_graceful_stop_leaves_the_consumer_sets(broker_factory, redis_server, start_worker):
    broker = broker_factory()
    seen = _worker_log(start_worker, broker.endpoint, "tidy")
    with Client(broker.endpoint, green=False) as client:
        client.push("tidy", b"x")
    wait_until(lambda: seen, scaled(10), message="the job run")
    r = redis_server.client()
    wait_until(
        lambda: r.zscore("zeromesh:consumers:tidy", "@broker:main") is not None,
        scaled(5),
        message="the broker's heartbeat in the consumer set",
    )
    assert broker.stop() == 0
    assert r.zscore("zeromesh:consumers:tidy", "@broker:main") is None
