# SPDX-License-Identifier: MIT
"""Jobs for later, through real brokers and a real Redis, seen on raw sockets: a push with
`at_ms` waits in its queue's schedule in Redis from its confirm on, is moved to the queue when
due (by exactly one broker), and can be listed, traced and cancelled before it runs."""

from __future__ import annotations

import time

import pytest
import zmq

from zeromesh.protocol import codec, redis_keys as keys, wire

from ..conftest import scaled, wait_until
from .conftest import restart_on_same_ports
from .wire_helpers import admin, dealer, recv

pytestmark = pytest.mark.timeout(90)


def now_ms() -> int:
    return int(time.time() * 1000)


def schedule(sock, queue: str, jid: str, at_ms: int, body: bytes | None = None):
    sock.send_multipart(codec.pack_item(wire.PUSH, {"id": jid, "queue": queue, "at_ms": at_ms}, body or jid.encode()))
    while True:
        env = recv(sock)
        if env.command == wire.CONFIRM and jid in env.header["ids"]:
            return env
        if env.command == wire.ERROR and env.header.get("re") == jid:
            return env


def schedule_many(sock, queue: str, ids: list[str], at_ms: int) -> None:
    """PUSH_BATCH in slices; every id confirmed."""
    left = set(ids)
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        header = {"id": f"b{start}", "queue": queue, "ids": part, "at_ms": at_ms}
        sock.send_multipart(codec.pack_batch(wire.PUSH_BATCH, header, [i.encode() for i in part]))
    deadline = time.monotonic() + scaled(30)
    while left:
        assert time.monotonic() < deadline, f"{len(left)} scheduled pushes never confirmed"
        env = recv(sock, 10)
        assert env.command != wire.ERROR, env.header
        if env.command == wire.CONFIRM:
            left -= set(env.header["ids"])


class RawWorker:
    """A worker on a raw DEALER: READY for `queue`, then takes jobs, noting when each arrived."""

    def __init__(self, zsocket, endpoint: str, queue: str, credit: int = 1000) -> None:
        self.sock = dealer(zsocket, endpoint)
        self.sock.send_multipart(codec.pack_control(wire.READY, {"id": "r", "names": [queue], "credit": credit}))
        assert recv(self.sock).command == wire.HEARTBEAT
        self.arrived: dict[str, list[int]] = {}

    def take(self, until: float) -> None:
        """Receive and ack jobs until the monotonic deadline (at least one message if one is waiting)."""
        while True:
            if not self.sock.poll(0 if time.monotonic() >= until else 50):
                if time.monotonic() >= until:
                    return
                continue
            env = codec.unpack(self.sock.recv_multipart())
            ids = []
            if env.command == wire.JOB:  # one message may carry several jobs
                ids = [header["id"] for header, _body in env.items]
            elif env.command in (wire.JOB_BATCH, wire.JOB_PACKED):
                ids = list(env.header["ids"])
            for jid in ids:
                self.arrived.setdefault(jid, []).append(now_ms())
            if ids:
                self.sock.send_multipart(codec.pack_control(wire.ACK, {"id": f"a{ids[0]}", "ids": ids}))


def test_a_job_runs_at_its_time_not_before(broker, zsocket):
    producer = dealer(zsocket, broker.endpoint)
    worker = RawWorker(zsocket, broker.endpoint, "cards")
    due = now_ms() + 1500
    assert schedule(producer, "cards", "xmas", due).command == wire.CONFIRM
    found = admin(producer, "trace", id="xmas")
    assert found["state"] == "scheduled" and found["due_ms"] == due and found["queue"] == "cards"
    listed = admin(producer, "scheduled", queue="cards")
    assert listed["total"] == 1 and listed["items"][0]["id"] == "xmas"
    worker.take(time.monotonic() + scaled(4))
    late = worker.arrived["xmas"][0] - due
    print(f"\nscheduled job delivered {late} ms after its due time")
    assert len(worker.arrived["xmas"]) == 1
    assert 0 <= late <= 100 * (1 if scaled(1) == 1 else 3), late
    assert admin(producer, "scheduled", queue="cards")["total"] == 0


def test_a_resend_schedules_once_and_cancel_stops_it(broker, zsocket, redis_server):
    producer = dealer(zsocket, broker.endpoint)
    due = now_ms() + 1000
    for _ in range(2):  # the producer's resend of one push
        assert schedule(producer, "cards", "twice", due).command == wire.CONFIRM
    assert schedule(producer, "cards", "cancelled", due).command == wire.CONFIRM
    r = redis_server.client()
    assert r.zcard(keys.scheduled_key("cards")) == 2
    assert admin(producer, "cancel", id="cancelled") == {"id": "cancelled", "queue": "cards", "cancelled": True}
    producer.send_multipart(
        codec.pack_control(wire.ADMIN, {"id": "again", "op": "cancel", "args": {"id": "cancelled"}})
    )
    again = recv(producer)
    assert again.command == wire.ERROR and again.header["code"] == wire.E_NOT_FOUND
    worker = RawWorker(zsocket, broker.endpoint, "cards")
    worker.take(time.monotonic() + scaled(2.5))
    assert worker.arrived.keys() == {"twice"} and len(worker.arrived["twice"]) == 1


def test_scheduled_jobs_survive_a_broker_sigkill(broker_factory, zsocket):
    broker = broker_factory()
    producer = dealer(zsocket, broker.endpoint)
    due = now_ms() + 2000
    ids = [f"s{i}" for i in range(50)]
    schedule_many(producer, "later", ids, due)
    broker.kill()
    time.sleep(scaled(2.5))  # due while no broker runs
    broker = restart_on_same_ports(broker_factory, broker)
    worker = RawWorker(zsocket, broker.endpoint, "later")
    worker.take(time.monotonic() + scaled(4))
    assert sorted(worker.arrived) == sorted(ids)
    assert all(len(times) == 1 for times in worker.arrived.values())


def test_ten_thousand_due_at_once_each_runs_once_with_two_brokers(broker_factory, zsocket):
    east, west = broker_factory(args=["--name", "east"]), broker_factory(args=["--name", "west"])
    producer = dealer(zsocket, east.endpoint)
    due = now_ms() + 3000
    ids = [f"j{i}" for i in range(10_000)]
    schedule_many(producer, "burst", ids, due)
    assert due - now_ms() > 200, "scheduling took too long for the test to mean anything"
    workers = [RawWorker(zsocket, b.endpoint, "burst") for b in (east, west)]
    pinger = dealer(zsocket, east.endpoint)
    pings: list[float] = []  # the routing loop's answer time while the burst goes through it
    until = time.monotonic() + (due - now_ms()) / 1000 + scaled(10)
    poller = zmq.Poller()
    for w in workers:
        poller.register(w.sock, zmq.POLLIN)
    next_ping = 0.0
    while time.monotonic() < until and sum(len(w.arrived) for w in workers) < len(ids):
        if now_ms() >= due and time.monotonic() >= next_ping:
            next_ping = time.monotonic() + 0.02
            sent = time.monotonic()
            pinger.send_multipart(codec.pack_control(wire.HEARTBEAT, {"id": "p"}))
            assert pinger.poll(scaled(2000)), "the broker stopped answering during the burst"
            pinger.recv_multipart()
            pings.append(time.monotonic() - sent)
        for sock, _ in poller.poll(10):
            next(w for w in workers if w.sock is sock).take(0)  # one message: take() reads before it looks at the clock
    arrived: dict[str, list[int]] = {}
    for w in workers:
        for jid, times in w.arrived.items():
            arrived.setdefault(jid, []).extend(times)
    lateness = sorted(min(times) - due for times in arrived.values())
    twice = sum(1 for times in arrived.values() if len(times) > 1)
    p50, p99 = lateness[len(lateness) // 2], lateness[int(len(lateness) * 0.99)]
    print(
        f"\n10,000 due at once over two brokers: {len(arrived)} delivered, {twice} twice; lateness first "
        f"{lateness[0]} ms, p50 {p50} ms, p99 {p99} ms, last {lateness[-1]} ms; east delivered "
        f"{len(workers[0].arrived)}, west {len(workers[1].arrived)}; ping during it max {max(pings) * 1000:.1f} ms"
    )
    assert len(arrived) == len(ids) and twice == 0
    bound = 100 * (1 if scaled(1) == 1 else 3)
    # Not stalled: the routing loop answered within the bound all along, and the burst was through in 2 s.
    assert lateness[0] >= 0 and max(pings) * 1000 <= bound and lateness[-1] <= 20 * bound


def test_without_redis_a_scheduled_push_is_refused(broker_factory, zsocket):
    broker = broker_factory(env={"ZEROMESH_REDIS_URL": "none"})
    producer = dealer(zsocket, broker.endpoint)
    refused = schedule(producer, "cards", "nope", now_ms() + 1000)
    assert refused.command == wire.ERROR and refused.header["code"] == wire.E_UNAVAILABLE
    assert "a scheduled job needs Redis, which is not configured" in refused.header["message"]
    assert admin(producer, "status")["queues"].get("cards", {}).get("enqueued", 0) == 0


def test_a_past_time_runs_now(broker, zsocket):
    producer = dealer(zsocket, broker.endpoint)
    worker = RawWorker(zsocket, broker.endpoint, "cards")
    started = now_ms()
    assert schedule(producer, "cards", "overdue", started - 60_000).command == wire.CONFIRM
    wait_until(lambda: (worker.take(time.monotonic() + 0.1), "overdue" in worker.arrived)[1], scaled(3))
    assert worker.arrived["overdue"][0] - started < 500


def test_scheduled_jobs_move_in_redis_even_with_no_worker(broker, zsocket, redis_server):
    """Due jobs reach the queue's Redis list for any consumer (a bash loop, say), not only workers."""
    producer = dealer(zsocket, broker.endpoint)
    assert schedule(producer, "bash-fed", "for-bash", now_ms() + 300).command == wire.CONFIRM
    r = redis_server.client()
    wait_until(lambda: r.llen(keys.queue_key("bash-fed")) == 1, scaled(3), 0.05, "the due job in the queue")
    assert r.zcard(keys.scheduled_key("bash-fed")) == 0 and r.hlen(keys.scheduled_jobs_key("bash-fed")) == 0


def test_a_job_scheduled_from_bash_reaches_a_worker_at_its_time(broker, zsocket, redis_server):
    """The bash client schedules with redis-cli alone (schedule.lua); the broker moves and delivers it."""
    from .redis_acl import run_bash

    worker = RawWorker(zsocket, broker.endpoint, "cards")
    started = now_ms()
    done = run_bash("zm_push cards 'from bash' --in 1", redis_server.url)
    assert done.returncode == 0, done.stderr
    jid = done.stdout.strip()
    worker.take(time.monotonic() + scaled(3))
    assert list(worker.arrived) == [jid]
    assert worker.arrived[jid][0] - started >= 1000
