# SPDX-License-Identifier: MIT
"""Worker(pool="thread"): the answers of many handler threads, and the socket they leave on.

Many threads replying at once, a request that arrives while answers are being sent (read
at once, not at the next heartbeat), results of a connection replaced while the handler
ran, and stopping with handlers in flight. Against a real broker, or a raw ROUTER playing
one where the test must see exactly what is sent.
"""

from __future__ import annotations

import sys
import threading
import time

import gevent
import pytest

import zeromesh
from zeromesh import Job, Worker
from zeromesh.protocol import codec, wire

from ..conftest import scaled, wait_until
from .test_worker_reconnect import job_message, messages_for, request_message
from .test_worker_wire import FakeBroker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture
def fake(zsocket):
    return FakeBroker(zsocket)


def test_eight_handler_threads_answer_two_hundred_requests_each_once(broker, start_worker):
    running = set()
    most = [0]
    lock = threading.Lock()

    def work(job: Job) -> bytes:
        with lock:
            running.add(threading.get_ident())
            most[0] = max(most[0], len(running))
        time.sleep(0.002)  # long enough for the jobs to be spread over the threads
        with lock:
            running.discard(threading.get_ident())
        return b"re:" + job.body

    start_worker(broker.endpoint, {"work": work}, concurrency=8, credit=200)
    with zeromesh.Client(broker.endpoint, green=True) as client:
        calls = [gevent.spawn(client.request, "work", b"%d" % i, timeout=scaled(20)) for i in range(200)]
        gevent.joinall(calls, timeout=scaled(30), raise_error=True)
        assert [g.value for g in calls] == [b"re:%d" % i for i in range(200)]
        # Each caller got its own answer exactly once: nothing further arrives.
        assert client.request("work", b"last", timeout=scaled(5)) == b"re:last"
    assert most[0] > 1, "the requests ran on several handler threads at once"


def test_a_request_arriving_while_handler_threads_send_is_read_at_once(broker, start_worker):
    # The heartbeat is long: a request left unread while answers were sent (a send can take
    # an edge-triggered ZMQ_FD's signal) would wait for the I/O thread's next beat, seconds away.
    heartbeat_s = 6.0

    def echo(job: Job) -> bytes:
        time.sleep(0.0015)  # sends come over a millisecond apart: libzmq then reads its commands in send
        return job.body

    start_worker(broker.endpoint, {"echo": echo}, concurrency=8, heartbeat_s=heartbeat_s)
    slowest: list[float] = []
    errors: list[BaseException] = []
    client = zeromesh.Client(broker.endpoint, green=False)

    def caller(n: int) -> None:
        worst = 0.0
        try:
            for i in range(60):
                started = time.monotonic()
                body = b"%d:%d" % (n, i)
                assert client.request("echo", body, timeout=scaled(20)) == body
                worst = max(worst, time.monotonic() - started)
        except BaseException as exc:  # reported below
            errors.append(exc)
        slowest.append(worst)

    try:
        threads = [threading.Thread(target=caller, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(scaled(60))
    finally:
        client.close()
    assert not errors, errors[:3]
    assert len(slowest) == 12
    assert max(slowest) < heartbeat_s / 3, f"a request waited {max(slowest):.2f}s: it sat unread"


def test_results_of_a_connection_replaced_mid_handler_are_not_sent_on_the_new_one(fake):
    release = threading.Event()
    started: list[str] = []

    def held(job: Job) -> bytes | None:
        started.append(job.id)
        release.wait(scaled(10))  # ignores job.cancelled: finishes after the connection is gone
        return b"late" if job.kind == "request" else None

    w = Worker(fake.endpoint, concurrency=4, heartbeat_s=3)
    w.handler("q")(held)
    w.handler("svc")(held)
    w.start()
    try:
        old, _ = fake.accept(epoch="one")
        fake.send(old, job_message(["j0", "j1"]))
        fake.send(old, request_message("r0", "svc"))
        fake.send(old, request_message("r1", "svc"))
        wait_until(lambda: len(started) == 4, 5, message="four handlers running")
        fake.send(old, codec.pack_control(wire.HEARTBEAT, {"id": "hb2", "epoch": "two"}))
        peer, env = fake.recv()
        assert (peer, env.command) == (old, wire.DISCONNECT), env
        new, _ = fake.accept(epoch="two")
        release.set()
        late = messages_for(fake, 1.0)
        assert late == [], f"results of the old connection were sent: {[(p, e.name) for p, e in late]}"
        # The new connection works: a job on it is acked.
        fake.send(new, job_message(["j2"]))
        peer, env = fake.recv()
        assert (peer, env.command, env.header["ids"]) == (new, wire.ACK, ["j2"])
    finally:
        release.set()
        w.stop(grace=1)


def test_stop_waits_for_handlers_in_flight_and_sends_their_answers(broker):
    w = Worker(broker.endpoint, concurrency=4)
    w.handler("nap")(lambda job: time.sleep(0.3) or job.body)
    w.start()
    assert w.wait_ready(scaled(5))
    answers: dict[int, bytes] = {}
    with zeromesh.Client(broker.endpoint, green=True) as client:
        calls = [gevent.spawn(client.request, "nap", b"%d" % i, timeout=scaled(10)) for i in range(4)]
        gevent.sleep(0.1)  # the four are running
        stopper = gevent.get_hub().threadpool.spawn(w.stop, scaled(5))
        gevent.joinall(calls, timeout=scaled(10), raise_error=True)
        answers = {i: g.value for i, g in enumerate(calls)}
        stopper.get(timeout=scaled(10))
    assert answers == {i: b"%d" % i for i in range(4)}
    assert w.done.is_set()


def test_a_handler_finishing_after_stop_drops_its_result_quietly(fake, monkeypatch):
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)  # where a dying thread's error would go
    release = threading.Event()
    returned = threading.Event()

    def slow(job: Job) -> bytes:
        release.wait(scaled(10))
        returned.set()
        return b"too late"

    w = Worker(fake.endpoint, concurrency=2, heartbeat_s=3)
    w.handler("svc")(slow)
    w.start()
    try:
        peer, _ = fake.accept()
        fake.send(peer, request_message("r0", "svc"))
        fake.send(peer, job_message(["j0"], queue="svc"))
        time.sleep(0.2)
        began = time.monotonic()
        w.stop(grace=0.3)  # shorter than the handlers: stop does not wait for them
        assert time.monotonic() - began < scaled(3)
        got = [e.command for _, e in messages_for(fake, 0.5)]
        assert wire.DISCONNECT in got and wire.REPLY not in got and wire.ACK not in got, got
        release.set()
        assert returned.wait(scaled(5))
        time.sleep(0.2)  # the handler threads send (or drop) now
        assert [e.command for _, e in messages_for(fake, 0.5)] == []
        assert unraisable == [], unraisable
    finally:
        release.set()
        w.stop(grace=1)
