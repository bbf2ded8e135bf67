# SPDX-License-Identifier: MIT
"""Unique jobs through real brokers and Redis, on raw sockets: while a job holds its unique key,
pushes with that key are confirmed as duplicates naming it and queue nothing; the key frees when
the job is done ("until done") or when its TTL runs out, across brokers and restarts."""

from __future__ import annotations

import threading
import time

import pytest

from zeromesh.protocol import codec, redis_keys as keys, wire

from ..conftest import scaled, wait_until
from .conftest import restart_on_same_ports
from .test_scheduled_jobs import RawWorker, now_ms
from .wire_helpers import admin, dealer, recv

pytestmark = pytest.mark.timeout(60)


def push_unique(sock, jid: str, key: str, ttl_ms: int | None = None, queue: str = "mail", **extra):
    header = {"id": jid, "queue": queue, "unique_key": key, **extra}
    if ttl_ms is not None:
        header["unique_ttl_ms"] = ttl_ms
    sock.send_multipart(codec.pack_item(wire.PUSH, header, jid.encode()))
    while True:
        env = recv(sock)
        if env.command == wire.CONFIRM and jid in env.header["ids"]:
            return env.header.get("duplicates", {}).get(jid)  # None: queued; else the job holding the key
        if env.command == wire.ERROR and env.header.get("re") == jid:
            raise AssertionError(env.header)


def test_concurrent_pushes_with_one_key_queue_one_job(broker_factory, zsocket):
    east, west = broker_factory(args=["--name", "east"]), broker_factory(args=["--name", "west"])
    producers = [dealer(zsocket, (east, west)[i % 2].endpoint) for i in range(8)]
    answers: dict[str, str | None] = {}
    start = threading.Barrier(len(producers))

    def push(i: int) -> None:
        start.wait()
        answers[f"click-{i}"] = push_unique(producers[i], f"click-{i}", "card:42")

    threads = [threading.Thread(target=push, args=(i,)) for i in range(len(producers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(20))
    queued = [jid for jid, first in answers.items() if first is None]
    print(f"\n{len(answers)} pushes with one key over two brokers: queued {queued}")
    assert len(answers) == len(producers) and len(queued) == 1
    assert all(first == queued[0] for first in answers.values() if first is not None)
    worker = RawWorker(zsocket, east.endpoint, "mail")
    worker.take(time.monotonic() + scaled(2))
    other = RawWorker(zsocket, west.endpoint, "mail")
    other.take(time.monotonic() + scaled(0.5))
    assert list(worker.arrived) + list(other.arrived) == queued


def test_until_done_frees_the_key_when_acked_or_dead_lettered(broker, zsocket, redis_server):
    producer = dealer(zsocket, broker.endpoint)
    assert push_unique(producer, "first", "welcome:ann") is None
    assert push_unique(producer, "second", "welcome:ann") == "first"
    assert push_unique(producer, "first", "welcome:ann") is None  # a resend of the holder is its own confirm
    r = redis_server.client()
    assert r.get(keys.unique_key("welcome:ann")) == b"first"
    worker = RawWorker(zsocket, broker.endpoint, "mail")
    worker.take(time.monotonic() + scaled(1))  # takes and acks "first"
    assert list(worker.arrived) == ["first"]
    wait_until(lambda: r.get(keys.unique_key("welcome:ann")) is None, scaled(3), 0.05, "the key freed on ack")
    assert push_unique(producer, "third", "welcome:ann") is None
    # A job that fails for good frees its key too.
    nacker = dealer(zsocket, broker.endpoint)
    nacker.send_multipart(codec.pack_control(wire.READY, {"id": "r", "names": ["doomed"], "credit": 1}))
    assert recv(nacker).command == wire.HEARTBEAT
    assert push_unique(producer, "bad", "report:1", queue="doomed") is None
    job = recv(nacker)
    assert job.command == wire.JOB
    nacker.send_multipart(codec.pack_control(wire.NACK, {"id": "n", "re": "bad", "error": "no", "retry": False}))
    wait_until(lambda: r.get(keys.unique_key("report:1")) is None, scaled(3), 0.05, "the key freed on dead letter")


def test_a_ttl_key_holds_past_completion_until_it_expires(broker, zsocket, redis_server):
    producer = dealer(zsocket, broker.endpoint)
    assert push_unique(producer, "t1", "digest:daily", ttl_ms=1500) is None
    worker = RawWorker(zsocket, broker.endpoint, "mail")
    worker.take(time.monotonic() + scaled(0.5))
    assert list(worker.arrived) == ["t1"]
    assert push_unique(producer, "t2", "digest:daily", ttl_ms=1500) == "t1"  # done, but within its TTL
    time.sleep(1.6)
    assert push_unique(producer, "t3", "digest:daily", ttl_ms=1500) is None


def test_a_unique_scheduled_job_and_a_restart(broker_factory, zsocket):
    broker = broker_factory()
    producer = dealer(zsocket, broker.endpoint)
    due = now_ms() + 1500
    assert push_unique(producer, "xmas-ann", "xmas:ann", at_ms=due) is None
    assert push_unique(producer, "xmas-ann-2", "xmas:ann", at_ms=due) == "xmas-ann"
    assert admin(producer, "trace", id="xmas-ann")["state"] == "scheduled"
    broker.kill()
    broker = restart_on_same_ports(broker_factory, broker)
    producer = dealer(zsocket, broker.endpoint)
    assert push_unique(producer, "xmas-ann-3", "xmas:ann") == "xmas-ann"  # the key survived the SIGKILL
    worker = RawWorker(zsocket, broker.endpoint, "mail")
    worker.take(time.monotonic() + scaled(3))
    assert list(worker.arrived) == ["xmas-ann"] and worker.arrived["xmas-ann"][0] >= due


def test_without_redis_a_unique_push_is_refused(broker_factory, zsocket):
    broker = broker_factory(env={"ZEROMESH_REDIS_URL": "none"})
    producer = dealer(zsocket, broker.endpoint)
    producer.send_multipart(codec.pack_item(wire.PUSH, {"id": "u", "queue": "mail", "unique_key": "k"}, b"x"))
    refused = recv(producer)
    assert refused.command == wire.ERROR and refused.header["code"] == wire.E_UNAVAILABLE
    assert "a unique job needs Redis" in refused.header["message"]
