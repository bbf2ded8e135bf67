# SPDX-License-Identifier: MIT
"""The broker process over raw ZeroMQ sockets: no zeromesh client involved."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import msgpack
import pytest
import zmq

from zeromesh.protocol import codec, wire

from ..conftest import scaled, wait_until
from .wire_helpers import admin, dealer, recv

pytestmark = pytest.mark.integration


def test_malformed_frames_leave_the_broker_serving(broker, zsocket):
    bad = dealer(zsocket, broker.endpoint)
    cases = [
        ([b"hello"], wire.E_BAD_FRAME),
        ([b"ZM\x01\x01"], wire.E_BAD_FRAME),
        ([b"ZM\x09\x01", b"\x80", b""], wire.E_BAD_VERSION),
        ([b"ZM\x01\x55", b"\x80"], wire.E_UNKNOWN_COMMAND),
        ([b"ZM\x01\x01", b"not msgpack \xc1", b"body"], wire.E_BAD_HEADER),
        ([b"ZM\x01\x01", msgpack.packb({"id": "p1"}), b"body"], wire.E_BAD_HEADER),
        ([b"ZM\x01\x01", msgpack.packb({"id": "p2", "queue": "q"})], wire.E_BAD_FRAME),
        ([b"ZM\x01\x04", msgpack.packb([1, 2, 3])], wire.E_BAD_HEADER),
    ]
    for frames, code in cases:
        bad.send_multipart(frames)
        env = recv(bad)
        assert env.command == wire.ERROR and env.header["code"] == code, (frames, env)
    # a second, well-behaved peer is served normally, and nothing was enqueued by the bad one
    good = dealer(zsocket, broker.endpoint)
    good.send_multipart(codec.pack_item(wire.PUSH, {"id": "ok-1", "queue": "q"}, b"fine"))
    env = recv(good)
    assert env.command == wire.CONFIRM and env.header["ids"] == ["ok-1"]
    status = admin(good, "status")
    assert status["queues"]["q"]["depth"] == 1
    assert status["counters"]["bad_input.bad_frame"] == 3
    assert status["counters"]["bad_input.bad_header"] == 3
    assert broker.running
    assert "bad input from peer" in broker.log()


def test_malformed_batches_change_nothing_and_name_the_message(broker, zsocket):
    bad = dealer(zsocket, broker.endpoint)
    pb = codec.command_frame(wire.PUSH_BATCH)
    cases = [
        ([pb, msgpack.packb({"id": "b1", "queue": "q", "ids": ["a", "b"]}), b"x"], wire.E_BAD_FRAME),
        ([pb, msgpack.packb({"id": "b2", "queue": "q", "ids": ["a", "a"]}), b"x", b"y"], wire.E_BAD_HEADER),
        ([pb, msgpack.packb({"id": "b3", "queue": "q", "ids": ["a"]})], wire.E_BAD_FRAME),
        ([pb, msgpack.packb({"id": "b4", "ids": ["a"]}), b"x"], wire.E_BAD_HEADER),
    ]
    for frames, code in cases:
        bad.send_multipart(frames)
        env = recv(bad)
        assert env.command == wire.ERROR and env.header["code"] == code, (frames, env)
        assert env.header["re"] == msgpack.unpackb(frames[1])["id"]  # the producer can tell which message
    # A batch worker first, so the jobs go to memory (with no credit they would spill to Redis,
    # confirmed job by job once written): confirmed whole, delivered in one JOB_BATCH.
    w = dealer(zsocket, broker.endpoint)
    w.send_multipart(codec.pack_control(wire.READY, {"id": "r", "names": ["q"], "credit": 10, "batch": True}))
    assert recv(w).command == wire.HEARTBEAT
    good = dealer(zsocket, broker.endpoint)
    good.send_multipart(
        codec.pack_batch(wire.PUSH_BATCH, {"id": "m1", "queue": "q", "ids": ["j1", "j2"]}, [b"one", b"two"])
    )
    env = recv(good)
    assert env.command == wire.CONFIRM and env.header["batches"] == ["m1"] and env.header["ids"] == []
    counters = admin(good, "status")["counters"]
    assert counters["bad_input.bad_frame"] == 2 and counters["bad_input.bad_header"] == 2
    env = recv(w)
    assert env.command == wire.JOB_BATCH and env.header["ids"] == ["j1", "j2"] and env.items == [b"one", b"two"]
    w.send_multipart(codec.pack_control(wire.ACK, {"id": "k", "ids": ["j1", "j2"]}))
    wait_until(lambda: admin(good, "status")["queues"]["q"]["acked"] == 2, 5.0)
    assert broker.running


def test_packed_pushes_and_jobs_over_raw_sockets(broker_factory, zsocket):
    """PUSH_PACKED in, JOB_PACKED out to a worker that asked for it, JOB_BATCH to one that did not;
    malformed packed messages are refused whole, named, counted, and change nothing."""
    broker = broker_factory(env={"ZEROMESH_MAX_MESSAGE": "1024"})
    bad = dealer(zsocket, broker.endpoint)
    pp = codec.command_frame(wire.PUSH_PACKED)

    def header(mid, ids, sizes, **more):
        return msgpack.packb({"id": mid, "queue": "q", "ids": ids, "sizes": sizes, **more})

    cases = [
        ([pp, header("p1", ["a", "b"], [1, 1]), b"xyz"], wire.E_BAD_FRAME),  # sizes add up to 2, not 3
        ([pp, header("p2", ["a", "b"], [1, 1]), b"x", b"y"], wire.E_BAD_FRAME),  # two body frames
        ([pp, header("p3", ["a", "b"], [2]), b"xy"], wire.E_BAD_HEADER),  # a size missing
        ([pp, header("p4", ["a", "a"], [1, 1]), b"xy"], wire.E_BAD_HEADER),  # an id twice
        ([pp, header("p5", ["a", "b"], [1, 1025]), b"x" * 1026], wire.E_TOO_LARGE),  # over the body limit
        ([pp, header("p6", ["a"], [-1]), b""], wire.E_BAD_HEADER),
    ]
    for frames, code in cases:
        bad.send_multipart(frames)
        env = recv(bad)
        assert env.command == wire.ERROR and env.header["code"] == code, (frames, env)
        assert env.header["re"] == msgpack.unpackb(frames[1])["id"]
    packed_worker = dealer(zsocket, broker.endpoint)
    packed_worker.send_multipart(
        codec.pack_control(wire.READY, {"id": "r1", "names": ["q"], "credit": 3, "batch": True, "packed": True})
    )
    assert recv(packed_worker).command == wire.HEARTBEAT
    producer = dealer(zsocket, broker.endpoint)
    bodies = [b"", b"one", bytes(range(256)), b"x" * 1024]
    header = {"id": "m1", "queue": "q", "ids": ["j1", "j2", "j3", "j4"]}
    producer.send_multipart(codec.pack_packed(wire.PUSH_PACKED, header, bodies))
    env = recv(producer)
    assert env.command == wire.CONFIRM and env.header["batches"] == ["m1"]
    env = recv(packed_worker)  # credit 3: the first three, packed
    assert env.command == wire.JOB_PACKED and env.header["ids"] == ["j1", "j2", "j3"]
    assert env.items == bodies[:3] and env.header["sizes"] == [0, 3, 256]
    batch_worker = dealer(zsocket, broker.endpoint)
    batch_worker.send_multipart(
        codec.pack_control(wire.READY, {"id": "r2", "names": ["q"], "credit": 5, "batch": True})
    )
    assert recv(batch_worker).command == wire.HEARTBEAT
    env = recv(batch_worker)  # the fourth to the worker without `packed`: one body frame per job
    assert env.command == wire.JOB_BATCH and env.header["ids"] == ["j4"] and env.items == [bodies[3]]
    packed_worker.send_multipart(codec.pack_control(wire.ACK, {"id": "k1", "ids": ["j1", "j2", "j3"]}))
    batch_worker.send_multipart(codec.pack_control(wire.ACK, {"id": "k2", "ids": ["j4"]}))
    wait_until(lambda: admin(producer, "status")["queues"]["q"]["acked"] == 4, 5.0)
    status = admin(producer, "status")
    assert status["queues"]["q"]["depth"] == 0  # nothing from the refused messages
    counters = status["counters"]
    assert counters["bad_input.bad_frame"] == 2 and counters["bad_input.bad_header"] == 3
    assert counters["bad_input.too_large"] == 1
    assert broker.running


def test_a_packed_frame_over_the_body_limit_but_within_1_mib_is_read(broker_factory, zsocket):
    """libzmq's frame cap (MAXMSGSIZE) leaves room for a full packed frame whatever the body limit:
    1000 bodies of 1 KiB with the smallest limit, in one frame of 1,024,000 bytes."""
    broker = broker_factory(env={"ZEROMESH_MAX_MESSAGE": "1024"})
    producer = dealer(zsocket, broker.endpoint)
    ids = [f"k{n}" for n in range(1000)]
    producer.send_multipart(
        codec.pack_packed(wire.PUSH_PACKED, {"id": "big", "queue": "q", "ids": ids}, [b"y" * 1024] * 1000)
    )
    confirmed: set[str] = set()
    while len(confirmed) < 1000:  # whole by its message id, or job by job once spilled to Redis
        env = recv(producer)
        assert env.command == wire.CONFIRM, env
        confirmed.update(ids if "big" in (env.header.get("batches") or ()) else env.header["ids"])
    assert confirmed == set(ids)
    assert admin(producer, "status")["queues"]["q"]["depth"] == 1000


def test_oversized_body_is_refused(broker_factory, zsocket):
    broker = broker_factory(env={"ZEROMESH_MAX_MESSAGE": "1024"})
    s = dealer(zsocket, broker.endpoint)
    s.send_multipart(codec.pack_item(wire.PUSH, {"id": "big", "queue": "q"}, b"x" * 1025))
    env = recv(s)
    assert env.header["code"] == wire.E_TOO_LARGE and env.header["re"] == "big"
    s.send_multipart(codec.pack_item(wire.PUSH, {"id": "fits", "queue": "q"}, b"x" * 1024))
    assert recv(s).header["ids"] == ["fits"]


def test_plain_sub_socket_receives_published_events(broker, zsocket):
    sub = zsocket(zmq.SUB)
    sub.connect(broker.pub_endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, b"cards.")
    pub = dealer(zsocket, broker.endpoint)
    deadline = time.monotonic() + scaled(5)
    n = 0
    while time.monotonic() < deadline:  # slow joiner: publish until the first one arrives
        n += 1
        pub.send_multipart(
            codec.pack_items(
                wire.PUBLISH,
                [
                    ({"id": f"x{n}", "topic": "other"}, b"not for us"),
                    ({"id": f"e{n}", "topic": "cards.42"}, b"changed"),
                ],
            )
        )
        if sub.poll(100):
            break
    frames = sub.recv_multipart()
    assert frames[0] == b"cards.42"
    header = msgpack.unpackb(frames[1])
    assert header["topic"] == "cards.42" and header["seq"] == n and len(header["epoch"]) > 0
    assert frames[2] == b"changed"


def test_worker_protocol_round_trip_with_raw_sockets(broker, zsocket):
    worker = dealer(zsocket, broker.endpoint)
    worker.send_multipart(codec.pack_control(wire.READY, {"id": "w", "names": ["q", "svc"], "credit": 10}))
    assert recv(worker).command == wire.HEARTBEAT  # READY is answered with our epoch
    client = dealer(zsocket, broker.endpoint)
    client.send_multipart(codec.pack_items(wire.PUSH, [({"id": f"j{i}", "queue": "q"}, b"%d" % i) for i in range(3)]))
    assert recv(client).header["ids"] == ["j0", "j1", "j2"]
    job = recv(worker)
    assert job.command == wire.JOB and [h["id"] for h, _ in job.items] == ["j0", "j1", "j2"]
    assert job.items[0][0]["attempt"] == 1 and job.items[0][0]["trace"] == "j0"
    worker.send_multipart(codec.pack_control(wire.ACK, {"id": "a", "ids": ["j0", "j1", "j2"]}))
    client.send_multipart(codec.pack_item(wire.REQUEST, {"id": "r1", "service": "svc", "timeout_ms": 3000}, b"ping"))
    req = recv(worker)
    while req.command == wire.HEARTBEAT:
        req = recv(worker)
    assert req.command == wire.REQUEST and req.items[0][1] == b"ping"
    worker.send_multipart(codec.pack_item(wire.REPLY, {"id": "w2", "re": "r1"}, b"pong"))
    reply = recv(client)
    assert reply.command == wire.REPLY and reply.header["re"] == "r1" and reply.items[0][1] == b"pong"
    status = admin(client, "status")
    assert status["queues"]["q"]["acked"] == 3 and status["queues"]["q"]["depth"] == 0


def test_replies_for_one_requester_come_back_as_one_message(broker, zsocket):
    """Greenlets of one process share a DEALER: what a worker answers together for that peer
    arrives as one REPLY, in the worker's order; another peer's answer still comes on its own."""
    worker = dealer(zsocket, broker.endpoint)
    worker.send_multipart(codec.pack_control(wire.READY, {"id": "w", "names": ["svc"], "credit": 10}))
    assert recv(worker).command == wire.HEARTBEAT
    shared, other = dealer(zsocket, broker.endpoint), dealer(zsocket, broker.endpoint)
    for sock, rid in ((shared, "s1"), (other, "o1"), (shared, "s2"), (shared, "s3")):
        sock.send_multipart(
            codec.pack_item(wire.REQUEST, {"id": rid, "service": "svc", "timeout_ms": 3000}, rid.encode())
        )
    held: list[str] = []
    while len(held) < 4:
        env = recv(worker)
        if env.command == wire.REQUEST:
            held += [h["id"] for h, _ in env.items]
    assert sorted(held) == ["o1", "s1", "s2", "s3"]
    worker.send_multipart(
        codec.pack_items(
            wire.REPLY, [({"id": f"x{rid}", "re": rid}, rid.upper().encode()) for rid in ("s3", "o1", "s1", "s2")]
        )
    )
    reply = recv(shared)
    assert reply.command == wire.REPLY
    assert [(h["re"], body) for h, body in reply.items] == [("s3", b"S3"), ("s1", b"S1"), ("s2", b"S2")]
    assert not shared.poll(200), "one message carried all three"
    reply = recv(other)
    assert [(h["re"], body) for h, body in reply.items] == [("o1", b"O1")]


def test_request_without_worker_fails_fast(broker, zsocket):
    s = dealer(zsocket, broker.endpoint)
    start = time.monotonic()
    s.send_multipart(codec.pack_item(wire.REQUEST, {"id": "r", "service": "nobody", "timeout_ms": 5000}, b""))
    env = recv(s)
    assert env.header["code"] == wire.E_NO_RESPONDERS
    assert time.monotonic() - start < 1.0


def test_silent_worker_is_declared_dead_and_jobs_redelivered(broker, zsocket):
    dead = dealer(zsocket, broker.endpoint)
    dead.send_multipart(codec.pack_control(wire.READY, {"id": "w", "names": ["q"], "credit": 5}))
    assert recv(dead).header["re"] == "w"  # registered before anything is pushed
    client = dealer(zsocket, broker.endpoint)
    client.send_multipart(codec.pack_items(wire.PUSH, [({"id": f"j{i}", "queue": "q"}, b"") for i in range(3)]))
    recv(client)
    job = recv(dead)
    assert [h["id"] for h, _ in job.items] == ["j0", "j1", "j2"]  # then it falls silent holding them
    alive = dealer(zsocket, broker.endpoint)
    alive.send_multipart(codec.pack_control(wire.READY, {"id": "w", "names": ["q"], "credit": 5}))
    start = time.monotonic()
    got = []
    while len(got) < 3 and time.monotonic() - start < scaled(8):
        if alive.poll(200):
            env = codec.unpack(alive.recv_multipart())
            if env.command == wire.HEARTBEAT:
                alive.send_multipart(codec.pack_control(wire.HEARTBEAT, {"id": "hb"}))
            if env.command == wire.JOB:
                got += [(h["id"], h["attempt"], h.get("error", "")) for h, _ in env.items]
    assert [g[0] for g in got] == ["j0", "j1", "j2"]
    assert all(attempt == 2 and "worker lost" in error for _, attempt, error in got)
    assert time.monotonic() - start < scaled(5)  # detected within a few seconds


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_after_in_flight_work_is_answered(broker, zsocket, signum):
    worker = dealer(zsocket, broker.endpoint)
    worker.send_multipart(codec.pack_control(wire.READY, {"id": "w", "names": ["q"], "credit": 5}))
    recv(worker)
    client = dealer(zsocket, broker.endpoint)
    client.send_multipart(codec.pack_item(wire.PUSH, {"id": "j", "queue": "q"}, b""))
    recv(client)
    assert recv(worker).command == wire.JOB
    broker.signal(signum)
    wait_until(lambda: admin(client, "status")["draining"], 5, message="broker draining")
    client.send_multipart(codec.pack_item(wire.PUSH, {"id": "late", "queue": "q"}, b""))
    env = recv(client)
    assert env.header["code"] == wire.E_SHUTTING_DOWN
    assert broker.running  # still waiting for our ack
    worker.send_multipart(codec.pack_control(wire.ACK, {"id": "a", "ids": ["j"]}))
    assert broker.wait(5) == 0
    while worker.poll(500):
        last = codec.unpack(worker.recv_multipart())
    assert last.command == wire.DISCONNECT


def test_config_file_sets_queue_properties(broker_factory, zsocket):
    broker = broker_factory(config_text="[queues.fragile]\nmax_attempts = 1\n")
    worker = dealer(zsocket, broker.endpoint)
    worker.send_multipart(codec.pack_control(wire.READY, {"id": "w", "names": ["fragile"], "credit": 1}))
    recv(worker)
    client = dealer(zsocket, broker.endpoint)
    client.send_multipart(codec.pack_item(wire.PUSH, {"id": "j", "queue": "fragile"}, b""))
    recv(client)
    assert recv(worker).command == wire.JOB
    worker.send_multipart(codec.pack_control(wire.NACK, {"id": "n", "re": "j", "error": "ValueError: nope"}))
    dl = wait_until(lambda: admin(client, "dead_letters", queue="fragile")["items"], 5, message="dead letter")
    assert dl[0]["id"] == "j" and dl[0]["error"] == "ValueError: nope"
    assert admin(client, "trace", id="j")["state"] == "dead_letter"


def test_bad_config_file_is_a_clear_error(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[queues.q]\nmax_atempts = 3\n")
    out = subprocess.run(
        [sys.executable, "-m", "zeromesh", "broker", "--config", str(cfg)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2
    assert "unknown key 'max_atempts'" in out.stderr


def test_a_body_limit_below_what_clients_may_batch_is_refused(tmp_path):
    # Green clients send small requests together; a limit under wire.MIN_BODY_LIMIT could
    # refuse such a batch whole for one body, so the broker does not start with one.
    env = {**os.environ, "ZEROMESH_MAX_MESSAGE": "512"}
    out = subprocess.run(
        [sys.executable, "-m", "zeromesh", "broker", "--no-redis"], capture_output=True, text=True, timeout=30, env=env
    )
    assert out.returncode == 2
    assert "must be at least 1024 bytes, got 512" in out.stderr
