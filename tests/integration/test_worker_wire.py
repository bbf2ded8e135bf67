# SPDX-License-Identifier: MIT
"""The Worker against a scripted fake broker (a raw ROUTER): exactly what it puts on the wire."""

from __future__ import annotations

import _thread
import logging
import threading
import time

import pytest
import zmq

from zeromesh import Job, Worker
from zeromesh.protocol import codec, wire

from ..conftest import scaled

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


class FakeBroker:
    def __init__(self, zsocket):
        self.sock = zsocket(zmq.ROUTER)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"

    def recv(self, timeout=3.0, skip=(wire.HEARTBEAT,)):
        """(peer, envelope) of the next message not in `skip`."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0 and self.sock.poll(remaining * 1000), "the worker sent nothing"
            peer, *frames = self.sock.recv_multipart()
            env = codec.unpack(frames)
            if env.command not in skip:
                return peer, env

    def send(self, peer, frames):
        self.sock.send_multipart([peer, *frames])

    def accept(self, epoch="e1"):
        """Take the worker's READY and answer it as the broker does: with a HEARTBEAT."""
        peer, env = self.recv()
        assert env.command == wire.READY, env
        self.send(peer, codec.pack_control(wire.HEARTBEAT, {"id": "hb", "epoch": epoch}))
        return peer, env


@pytest.fixture
def fake(zsocket):
    return FakeBroker(zsocket)


@pytest.fixture
def run_worker():
    workers = []

    def start(endpoint, handlers, inline=None, **kw):
        w = Worker(endpoint, **kw)
        for name, fn in handlers.items():
            w.handler(name, inline=inline)(fn)
        workers.append(w.start())
        return w

    yield start
    for w in workers:
        w.stop(grace=1)


def jobs(n, queue="q"):
    return codec.pack_items(
        wire.JOB,
        [({"id": f"j{i}", "queue": queue, "attempt": 1, "trace": f"j{i}", "lease_ms": 60000}, b"") for i in range(n)],
    )


def test_ready_then_cumulative_acks(fake, run_worker):
    w = run_worker(fake.endpoint, {"q": lambda job: None, "svc": lambda job: b""}, concurrency=4, label="w")
    peer, env = fake.accept()
    assert w.wait_ready(scaled(3))
    assert (env.header["names"], env.header["credit"], env.header["label"], env.header["lang"]) == (
        ["q", "svc"],
        16,
        "w",
        "python",
    )
    fake.send(peer, jobs(500))
    acked: list[str] = []
    messages = 0
    while len(acked) < 500:
        _, env = fake.recv()
        assert env.command == wire.ACK
        acked += env.header["ids"]
        messages += 1
    assert sorted(acked) == sorted(f"j{i}" for i in range(500))
    print(f"{messages} ACK messages for 500 jobs")
    assert messages < 100, f"{messages} ACK messages for 500 jobs: results are not batched"


@pytest.mark.parametrize("form", [wire.JOB_BATCH, wire.JOB_PACKED], ids=["batch", "packed"])
def test_job_batch_jobs_are_first_deliveries_with_their_own_headers(fake, run_worker, form):
    seen: list[Job] = []
    lock = threading.Lock()

    def handle(job):
        job.headers["touched"] = job.id  # each job's own dict: this must not leak to the others
        with lock:
            seen.append(job)

    run_worker(fake.endpoint, {"q": handle}, concurrency=3)
    peer, env = fake.accept()
    assert env.header["batch"] is True and env.header["packed"] is True
    ids = [f"b{i}" for i in range(50)]
    pack = codec.pack_packed if form == wire.JOB_PACKED else codec.pack_batch
    fake.send(
        peer,
        pack(
            form,
            {"id": "m", "queue": "q", "lease_ms": 30000, "ids": ids, "headers": {"k": "v"}},
            [i.encode() for i in ids],
        ),
    )
    acked: list[str] = []
    while len(acked) < len(ids):
        _, env = fake.recv()
        assert env.command == wire.ACK, env
        acked += env.header["ids"]
    assert sorted(acked) == sorted(ids)
    by_id = {job.id: job for job in seen}
    for jid in ids:
        job = by_id[jid]
        assert (job.body, job.attempt, job.trace, job.error, job.name, job.kind) == (
            jid.encode(),
            1,
            jid,
            None,
            "q",
            "job",
        )
        assert job.headers == {"k": "v", "touched": jid} and job.lease_s == 30.0


def test_inline_handlers_run_in_the_io_thread_and_answer_like_the_others(fake, run_worker):
    import _thread

    # The worker's threads are raw OS threads with no names (and a compiled worker leaves no Python
    # frames to tell them by): with one handler thread, the I/O thread is the one thread that is
    # neither the test's nor the one that runs the pooled handler.
    inline_threads: set[int] = set()
    pooled_threads: set[int] = set()

    def echo(job):
        inline_threads.add(_thread.get_ident())
        if job.body == b"boom":
            raise ValueError("bad input")
        return job.body

    w = Worker(fake.endpoint, concurrency=1)
    w.handler("echo", inline=True)(echo)
    w.handler("q", inline=True)(lambda job: inline_threads.add(_thread.get_ident()))
    w.handler("pooled")(lambda job: pooled_threads.add(_thread.get_ident()))
    w.start()
    try:
        peer, _ = fake.accept()
        fake.send(
            peer,
            codec.pack_items(
                wire.REQUEST,
                [
                    ({"id": "r1", "service": "echo", "timeout_ms": 5000, "trace": "r1", "attempt": 1}, b"hi"),
                    ({"id": "r2", "service": "echo", "timeout_ms": 5000, "trace": "r2", "attempt": 1}, b"boom"),
                ],
            ),
        )
        fake.send(peer, jobs(3))
        fake.send(
            peer,
            codec.pack_items(
                wire.JOB,
                [
                    ({"id": f"p{i}", "queue": "pooled", "attempt": 1, "trace": f"p{i}", "lease_ms": 60000}, b"")
                    for i in range(4)
                ],
            ),
        )
        answers: dict[str, object] = {}
        while len(answers) < 9:
            _, env = fake.recv()
            if env.command == wire.REPLY:
                answers.update({h["re"]: body for h, body in env.items})
            elif env.command == wire.ERROR:
                answers[env.header["re"]] = env.header["code"]
            elif env.command == wire.ACK:
                answers.update({jid: "acked" for jid in env.header["ids"]})
        assert answers == {
            "r1": b"hi",
            "r2": wire.E_REMOTE,
            **{f"j{i}": "acked" for i in range(3)},
            **{f"p{i}": "acked" for i in range(4)},
        }
        assert len(inline_threads) == 1, inline_threads  # every inline handler ran in one thread
        assert not inline_threads & (pooled_threads | {_thread.get_ident()})  # ... the I/O thread
    finally:
        w.stop(grace=1)


def assert_heartbeats_for_a_second(fake, peer):
    """The worker (heartbeat_s=0.1) beats at least 6 times in a second, never 0.35 s apart."""
    beats = []
    t0 = last_sent = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        if time.monotonic() - last_sent >= 0.1:  # beat like the broker's tick, or the worker gives up on us
            fake.send(peer, codec.pack_control(wire.HEARTBEAT, {"id": "hb", "epoch": "e1"}))
            last_sent = time.monotonic()
        if fake.sock.poll(20):
            sender, *frames = fake.sock.recv_multipart()
            if sender == peer and codec.unpack(frames).command == wire.HEARTBEAT:
                beats.append(time.monotonic())
    assert len(beats) >= 6, f"only {len(beats)} heartbeats in 1 s at 0.1 s intervals"
    assert max(b - a for a, b in zip(beats, beats[1:], strict=False)) < 0.35


def test_heartbeats_while_a_handler_burns_cpu(fake, run_worker):
    started = threading.Event()

    def burn(job: Job) -> None:
        started.set()
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            pass

    run_worker(fake.endpoint, {"q": burn}, concurrency=1, heartbeat_s=0.1)
    peer, _ = fake.accept()
    fake.send(peer, jobs(1))
    assert started.wait(scaled(3))
    assert_heartbeats_for_a_second(fake, peer)


def test_unknown_peer_before_the_broker_answered_ready_changes_nothing(fake, run_worker):
    # Not registered yet: the READY is repeated every beat anyway, on the same connection.
    w = run_worker(fake.endpoint, {"q": lambda job: None}, heartbeat_s=0.3)
    peer, _ = fake.recv()
    fake.send(peer, codec.pack_control(wire.ERROR, {"id": "e1", "code": "unknown_peer", "message": "who?"}))
    again, env = fake.recv()
    assert (again, env.command) == (peer, wire.READY), env
    fake.send(peer, codec.pack_control(wire.HEARTBEAT, {"id": "hb", "epoch": "e1"}))
    assert w.wait_ready(scaled(2))


def test_new_epoch_or_silence_means_disconnect_then_a_fresh_socket_and_ready(fake, run_worker):
    run_worker(fake.endpoint, {"q": lambda job: None}, heartbeat_s=0.1)
    peer, _ = fake.accept(epoch="one")
    fake.send(peer, codec.pack_control(wire.HEARTBEAT, {"id": "h2", "epoch": "two"}))
    left, env = fake.recv()
    assert (left, env.command, env.header["reason"]) == (
        peer,
        wire.DISCONNECT,
        "reconnecting: broker epoch changed one -> two",
    )
    peer2, env = fake.accept(epoch="two")
    assert peer2 != peer
    # Now say nothing: after 3 silent intervals the worker leaves that connection too, for yet another.
    t0 = time.monotonic()
    left, env = fake.recv(timeout=2)
    assert (left, env.command) == (peer2, wire.DISCONNECT) and env.header["reason"].startswith(
        "reconnecting: nothing heard for"
    ), env
    peer3, env = fake.recv(timeout=2)
    assert env.command == wire.READY and peer3 not in (peer, peer2)
    assert 0.25 < time.monotonic() - t0 < scaled(1.0)


def test_ready_is_repeated_until_the_broker_answers(fake, run_worker):
    w = run_worker(fake.endpoint, {"q": lambda job: None}, heartbeat_s=0.1)
    peer, _ = fake.recv()
    again, env = fake.recv()  # a READY can be lost: no answer, so it comes again instead of a HEARTBEAT
    assert env.command == wire.READY and again == peer and not w.registered.is_set()
    fake.send(peer, codec.pack_control(wire.HEARTBEAT, {"id": "hb", "epoch": "e1"}))
    assert w.wait_ready(scaled(2))
    _, env = fake.recv(skip=(wire.READY,), timeout=1)
    assert env.command == wire.HEARTBEAT


def test_cancel_extend_and_reply(fake, run_worker):
    release = threading.Event()

    def slow(job: Job) -> bytes:
        job.extend(30)
        job.cancelled.wait(scaled(5))
        release.wait(scaled(5))
        return b"done anyway"

    run_worker(fake.endpoint, {"slow": slow, "fast": lambda job: job.body.upper()})
    peer, _ = fake.accept()
    fake.send(
        peer,
        codec.pack_item(
            wire.REQUEST, {"id": "r1", "service": "slow", "timeout_ms": 5000, "trace": "r1", "attempt": 1}, b""
        ),
    )
    _, env = fake.recv()
    assert env.command == wire.EXTEND and env.header["ids"] == ["r1"] and env.header["lease_ms"] == 30000
    fake.send(
        peer,
        codec.pack_item(
            wire.REQUEST, {"id": "r2", "service": "fast", "timeout_ms": 5000, "trace": "r2", "attempt": 1}, b"abc"
        ),
    )
    _, env = fake.recv()
    assert env.command == wire.REPLY and env.items[0][0]["re"] == "r2" and env.items[0][1] == b"ABC"
    fake.send(peer, codec.pack_control(wire.CANCEL, {"id": "c1", "re": "r1"}))
    release.set()
    _, env = fake.recv()
    assert env.command == wire.ERROR and env.header["re"] == "r1" and env.header["code"] == "cancelled"


def test_stop_sends_credit_zero_then_disconnect(fake, run_worker):
    w = run_worker(fake.endpoint, {"q": lambda job: time.sleep(0.3)}, concurrency=1)
    peer, _ = fake.accept()
    fake.send(peer, jobs(3))
    time.sleep(0.1)  # j0 running, j1 and j2 waiting
    stopper = threading.Thread(target=w.stop, kwargs={"grace": 2})
    stopper.start()
    commands = []
    while not commands or commands[-1][0] != wire.DISCONNECT:
        _, env = fake.recv()
        commands.append((env.command, env.header.get("credit", env.header.get("ids"))))
    stopper.join(scaled(5))
    assert commands == [(wire.CREDIT, 0), (wire.ACK, ["j0"]), (wire.DISCONNECT, None)]


@pytest.fixture
def stoppers():
    """Workers a test made itself, stopped after it."""
    workers: list[Worker] = []
    yield workers
    for w in workers:
        w.stop(grace=1)


def one_job_at_a_time(fake, peer, count, queue="q"):
    """Send `count` jobs, each after the worker acked the one before (so each is a run of its own)."""
    for i in range(count):
        header = {"id": f"s{i}", "queue": queue, "attempt": 1, "trace": f"s{i}", "lease_ms": 60000}
        fake.send(peer, codec.pack_items(wire.JOB, [(header, b"")]))
        _, env = fake.recv()
        assert env.command == wire.ACK and env.header["ids"] == [f"s{i}"], env


def test_a_quick_handler_moves_to_the_io_thread_and_one_slow_run_sends_it_back(fake, stoppers, caplog):
    """inline=None (the default): handler threads first, the I/O thread after enough quick runs,
    the handler threads again for good after a slow run there (inline_choice.py)."""
    calls: list[int] = []
    probe: list[int] = []
    slow_once = threading.Event()

    def handle(job: Job) -> None:
        calls.append(_thread.get_ident())
        if slow_once.is_set():
            slow_once.clear()
            time.sleep(0.02)

    w = Worker(fake.endpoint, concurrency=2)
    w.handler("q")(handle)
    w.handler("probe", inline=True)(lambda job: probe.append(_thread.get_ident()))  # pinned: tells the I/O thread
    stoppers.append(w.start())
    peer, _ = fake.accept()
    one_job_at_a_time(fake, peer, 1, queue="probe")
    io_thread = probe[0]
    for _ in range(20):  # a run preempted past 0.2 ms on a busy machine starts the count again
        one_job_at_a_time(fake, peer, 60)
        if calls[-1] == io_thread:
            break
    moved = next((i for i, ident in enumerate(calls) if ident == io_thread), None)
    assert moved is not None, f"still on the handler threads after {len(calls)} quick runs"
    assert moved >= 50, "moved before 50 quick runs"
    assert set(calls[moved:]) == {io_thread}, "back and forth without a slow run"

    with caplog.at_level(logging.INFO, logger="zeromesh.worker"):
        slow_once.set()
        before = len(calls)
        one_job_at_a_time(fake, peer, 1)
        assert calls[before] == io_thread  # the slow run itself, on the I/O thread
        one_job_at_a_time(fake, peer, 200)
    assert io_thread not in calls[before + 1 :], "a slow handler stayed on the I/O thread, or came back"
    assert "handler 'q' took" in caplog.text and "runs on the handler threads from now on" in caplog.text


def test_with_one_handler_thread_the_worker_moves_nothing(fake, run_worker):
    """concurrency=1 promises one handler at a time: a handler on the I/O thread would run beside
    one on the handler thread, so the worker leaves every handler where it is."""
    calls: list[int] = []
    run_worker(fake.endpoint, {"q": lambda job: calls.append(_thread.get_ident())}, concurrency=1)
    peer, _ = fake.accept()
    one_job_at_a_time(fake, peer, 300)
    assert len(set(calls)) == 1


def test_heartbeats_go_on_while_an_inline_handler_blocks(fake, run_worker):
    """A handler on the I/O thread that blocks for five liveness intervals: the worker's
    heartbeats keep coming (from its cover thread), and afterwards it answers on the same
    connection instead of taking the broker's queued heartbeats for silence and reconnecting."""
    started = threading.Event()

    def block(job: Job) -> None:
        started.set()
        time.sleep(1.5)

    run_worker(fake.endpoint, {"q": block}, inline=True, concurrency=1, heartbeat_s=0.1)
    peer, _ = fake.accept()
    fake.send(peer, jobs(1))
    assert started.wait(scaled(3))
    assert_heartbeats_for_a_second(fake, peer)
    sender, env = None, None
    while env is None or env.command == wire.HEARTBEAT:
        assert fake.sock.poll(scaled(3) * 1000), "no ACK after the handler returned"
        sender, *frames = fake.sock.recv_multipart()
        env = codec.unpack(frames)
    assert (sender, env.command, env.header["ids"]) == (peer, wire.ACK, ["j0"])
