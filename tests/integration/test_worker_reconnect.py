# SPDX-License-Identifier: MIT
"""A worker that replaces its connection leaves the old one for good, in thread and gevent mode.

It says DISCONNECT on the old connection (so a broker still registering it
hands its jobs back at once, without counting an attempt), never registers it
again, and abandons what came on it: jobs not started never run, results of
running ones are never sent on the new connection. Checked against a raw
ROUTER playing the broker, and against real brokers restarted under load.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from zeromesh import Client, Worker
from zeromesh.protocol import codec, wire

from ..conftest import scaled, wait_until
from .conftest import restart_on_same_ports, wait_registered
from .test_worker_wire import FakeBroker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

POOLS = [[], ["--gevent"]]
POOL_IDS = ["thread", "gevent"]


@pytest.fixture
def fake(zsocket):
    return FakeBroker(zsocket)


def job_message(ids: list[str], queue: str = "q") -> list[bytes]:
    return codec.pack_items(
        wire.JOB, [({"id": jid, "queue": queue, "attempt": 1, "trace": jid, "lease_ms": 60_000}, b"") for jid in ids]
    )


def messages_for(fake: FakeBroker, seconds: float) -> list[tuple[bytes, codec.Envelope]]:
    """Every message but heartbeats that reaches the fake broker in the next `seconds`."""
    got = []
    deadline = time.monotonic() + scaled(seconds)
    while (remaining := deadline - time.monotonic()) > 0:
        if fake.sock.poll(remaining * 1000):
            peer, *frames = fake.sock.recv_multipart()
            env = codec.unpack(frames)
            if env.command != wire.HEARTBEAT:
                got.append((peer, env))
    return got


def started(proc) -> list[str]:
    return [jid for jid, _attempt in proc.lines("start")]


@pytest.mark.parametrize("pool", POOLS, ids=POOL_IDS)
def test_an_epoch_change_leaves_the_old_connection_and_abandons_its_jobs(fake, worker_process, pool):
    # One handler at a time, credit 4: j0 runs for a second, j1..j3 wait for the handler.
    proc = worker_process(
        fake.endpoint,
        "--queue",
        "q",
        "--sleep",
        "1.0",
        "--concurrency",
        "1",
        "--credit",
        "4",
        "--heartbeat",
        "3",
        *pool,
        label="w",
    )
    old, _ = fake.accept(epoch="one")
    fake.send(old, job_message(["j0", "j1", "j2", "j3"]))
    wait_until(lambda: started(proc) == ["j0"], 5, message="j0 started")

    fake.send(old, codec.pack_control(wire.HEARTBEAT, {"id": "hb2", "epoch": "two"}))  # the broker restarted
    peer, env = fake.recv()
    assert (peer, env.command) == (old, wire.DISCONNECT), f"the old connection must be left with DISCONNECT: {env}"
    assert "epoch changed one -> two" in env.header["reason"]
    new, ready = fake.accept(epoch="two")
    assert new != old and ready.header["names"] == ["q"]

    # j0 finishes meanwhile: its ACK must not come on the new connection; j1..j3 never start.
    later = messages_for(fake, 2.0)
    assert [jid for (jid,) in proc.lines("done")] == ["j0"], "the running job runs to its end"
    assert [(p == new, e.name, e.header.get("ids")) for p, e in later] == [], (
        "nothing of the old connection's jobs may be answered on the new one"
    )
    assert started(proc) == ["j0"], "jobs of the old connection that had not started must never run"
    assert "abandoned 4 job(s) and 0 request(s) received on the replaced connection" in proc.log()

    # The new connection works as any: the broker delivers j1 again, and it is answered there.
    fake.send(new, job_message(["j1"]))
    peer, env = fake.recv(timeout=5)
    assert (peer, env.command, env.header["ids"]) == (new, wire.ACK, ["j1"])


@pytest.mark.parametrize("pool", POOLS, ids=POOL_IDS)
def test_unknown_peer_means_a_new_connection_never_ready_on_the_old(fake, worker_process, pool):
    proc = worker_process(
        fake.endpoint,
        "--queue",
        "q",
        "--sleep",
        "0.5",
        "--concurrency",
        "1",
        "--credit",
        "2",
        "--heartbeat",
        "3",
        *pool,
        label="w",
    )
    old, _ = fake.accept(epoch="one")
    fake.send(old, job_message(["j0", "j1"]))
    wait_until(lambda: started(proc) == ["j0"], 5, message="j0 started")
    # What a restarted broker answers to ACKs the old socket queued while it was down (the socket
    # reconnected to it on its own): it does not know this connection.
    fake.send(old, codec.pack_control(wire.ERROR, {"id": "e1", "code": wire.E_UNKNOWN_PEER, "message": "who?"}))
    peer, env = fake.recv()
    assert (peer, env.command) == (old, wire.DISCONNECT), f"READY on a connection the broker forgot: {env}"
    new, _ = fake.accept(epoch="two")
    assert new != old
    # The same ERROR again, now on the old connection (answers to more of its queued ACKs): it is left, so
    # nothing comes of it, and j0's result stays off the new connection.
    fake.send(old, codec.pack_control(wire.ERROR, {"id": "e2", "code": wire.E_UNKNOWN_PEER, "message": "who?"}))
    later = messages_for(fake, 1.5)
    assert [(p == new, e.name) for p, e in later] == []
    assert started(proc) == ["j0"]


def request_message(rid: str, service: str, body: bytes = b"") -> list[bytes]:
    return codec.pack_item(
        wire.REQUEST, {"id": rid, "service": service, "timeout_ms": 30_000, "trace": rid, "attempt": 1}, body
    )


def test_requests_of_a_left_connection_are_cancelled_and_never_answered_thread(fake):
    seen: list[str] = []
    saw_cancel = threading.Event()

    def slow(job):
        seen.append(job.id)
        if job.cancelled.wait(scaled(5)):
            saw_cancel.set()
        return b"too late"

    w = Worker(fake.endpoint, concurrency=1, heartbeat_s=3)
    w.handler("slow")(slow)
    w.start()
    try:
        old, _ = fake.accept(epoch="one")
        fake.send(old, request_message("r0", "slow"))
        fake.send(old, request_message("r1", "slow"))
        wait_until(lambda: seen == ["r0"], 5, message="r0 running")
        fake.send(old, codec.pack_control(wire.HEARTBEAT, {"id": "hb2", "epoch": "two"}))
        peer, env = fake.recv()
        assert (peer, env.command) == (old, wire.DISCONNECT), env
        new, _ = fake.accept(epoch="two")
        assert saw_cancel.wait(scaled(2)), "the running request's handler is told it was cancelled"
        assert messages_for(fake, 1.0) == [], "no answer to a request of the old connection on the new one"
        assert seen == ["r0"], "the waiting request never starts"
    finally:
        w.stop(grace=1)


def test_requests_of_a_left_connection_are_never_answered_gevent(fake, green_worker):
    # render_green_main.py's "nap" sleeps the body's seconds and replies it; one greenlet at a time.
    green_worker(fake.endpoint, "--concurrency", "1", "--credit", "3", "--heartbeat", "3", label="g")
    old, _ = fake.accept(epoch="one")
    fake.send(old, request_message("r0", "nap", b"1.0"))
    fake.send(old, request_message("r1", "nap", b"0"))  # would be answered at once if it ever started
    time.sleep(0.3)
    fake.send(old, codec.pack_control(wire.HEARTBEAT, {"id": "hb2", "epoch": "two"}))
    peer, env = fake.recv()
    assert (peer, env.command) == (old, wire.DISCONNECT), env
    new, _ = fake.accept(epoch="two")
    assert messages_for(fake, 1.5) == [], "no answer to a request of the old connection on the new one"
    fake.send(new, request_message("r2", "ping"))
    peer, env = fake.recv(timeout=5)
    assert (peer, env.command, env.items[0][0]["re"], env.items[0][1]) == (new, wire.REPLY, "r2", b"pong")


DURABLE = "[queues.orders]\ndurable = true\n"


def test_a_broker_restart_registers_each_worker_once_and_inflates_no_attempt(broker_factory, worker_process):
    """A broker SIGKILLed while a thread worker and a gevent worker hold durable jobs, started again
    on the same port, Redis and name (three times): each worker is listed once, no job runs more
    than twice (before the kill and after), none with an attempt a stale registration counted."""
    broker = broker_factory(config_text=DURABLE)
    workers = [
        worker_process(
            broker.endpoint,
            "--queue",
            "orders",
            "--sleep",
            "0.1",
            "--concurrency",
            "2",
            "--credit",
            "4",
            *pool,
            label=f"{name}-worker",
        )
        for name, pool in zip(POOL_IDS, POOLS, strict=True)
    ]
    client = Client(broker.endpoint, green=False)
    try:
        for w in workers:
            wait_registered(client, w.label)
        rounds, per_round = 3, 100
        ids: list[str] = []

        def done() -> set[str]:
            return {jid for w in workers for (jid,) in w.lines("done")}

        listed: list[Counter] = []
        for _ in range(rounds):
            ids += client.push_many("orders", [b"order-%d" % n for n in range(per_round)], timeout=scaled(10))
            # Kill while both workers are mid-jobs, so each has ACKs queued on its socket for the next broker.
            before = len(done())
            wait_until(lambda before=before: len(done()) >= before + 10, 20, message="workers busy")
            broker.kill()
            broker = restart_on_same_ports(broker_factory, broker, config_text=DURABLE)
            client.close()
            client = Client(broker.endpoint, green=False)
            # A stale registration lives until the broker declares it lost (3 s): look at status meanwhile.
            until = time.monotonic() + scaled(3.5)
            while time.monotonic() < until:
                listed.append(Counter(w["label"] for w in client.status()["workers"]))
                time.sleep(0.1)
        wait_until(
            lambda: done() >= set(ids),
            60,
            interval=0.1,
            message=f"every confirmed job handled (missing {len(set(ids) - done())})",
        )

        def settled() -> Counter | None:
            # Nothing left anywhere (a stale registration gives its jobs back only when declared lost).
            status = client.status()
            orders = status["queues"]["orders"]
            listed = Counter(w["label"] for w in status["workers"])
            return (
                listed
                if orders["depth"] == 0 and orders["in_flight"] == 0 and all(n == 1 for n in listed.values())
                else None
            )

        final = wait_until(settled, 15, interval=0.1, message="the queue empty and each worker listed once")
    finally:
        client.close()

    starts = [(jid, int(attempt)) for w in workers for jid, attempt in w.lines("start")]
    runs = Counter(jid for jid, _ in starts)
    print(
        f"{len(starts)} runs of {len(ids)} jobs; {sum(1 for n in runs.values() if n > 1)} ran twice; "
        f"attempts seen {sorted(Counter(a for _, a in starts).items())}"
    )
    assert final == {"thread-worker": 1, "gevent-worker": 1}, final
    doubled = [c for c in listed if any(n > 1 for n in c.values())]
    assert not doubled, f"a worker listed twice after a restart (a stale registration): {doubled[:3]}"
    assert max(runs.values()) <= 1 + rounds, runs.most_common(3)
    # No handler fails and a broker restart puts its own in-flight jobs back as they were: every
    # delivery is attempt 1 unless a stale registration was declared lost holding the job.
    inflated = sorted({(jid, a) for jid, a in starts if a != 1})
    assert not inflated, f"deliveries with an attempt counted by a stale registration: {inflated[:10]}"
