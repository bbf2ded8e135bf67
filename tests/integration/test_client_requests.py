# SPDX-License-Identifier: MIT
"""Request/reply through the Python client and worker against a real broker."""

from __future__ import annotations

import builtins
import threading
import time

import pytest

import zeromesh
from zeromesh import Job

from ..conftest import scaled

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def echo(job: Job) -> bytes:
    return job.body


def test_many_threads_share_one_client(client, start_worker, broker):
    start_worker(broker.endpoint, {"echo": echo}, concurrency=4)
    errors: list[BaseException] = []
    done = []

    def caller(n: int) -> None:
        try:
            for i in range(50):
                body = f"{n}:{i}".encode()
                assert client.request("echo", body, timeout=scaled(10)) == body
            done.append(n)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(30))
    assert not errors, errors[:3]
    assert sorted(done) == list(range(16))


def test_request_full_carries_reply_headers(client, start_worker, broker):
    start_worker(broker.endpoint, {"hdr": lambda job: zeromesh.Reply(job.body, {"seen": job.headers["x"]})})
    reply = client.request_full("hdr", "body", headers={"x": 42})
    assert (reply.body, reply.headers) == (b"body", {"seen": 42})


def test_timeout_raises_and_cancels_the_handler(client, start_worker, broker):
    cancelled = threading.Event()

    def slow(job: Job) -> bytes:
        if job.cancelled.wait(scaled(5)):
            cancelled.set()
        return b"too late"

    start_worker(broker.endpoint, {"slow": slow})
    t0 = time.monotonic()
    with pytest.raises(zeromesh.TimeoutError) as info:
        client.request("slow", b"", timeout=0.3)
    elapsed = time.monotonic() - t0
    assert isinstance(info.value, builtins.TimeoutError)
    assert 0.25 < elapsed < scaled(0.3 + client.request_margin + 0.3), elapsed
    assert cancelled.wait(scaled(3)), "the broker should CANCEL the request at the worker"


def test_no_worker_fails_fast(client):
    t0 = time.monotonic()
    with pytest.raises(zeromesh.NoRespondersError) as info:
        client.request("nobody", b"", timeout=5)
    assert time.monotonic() - t0 < scaled(1)
    assert info.value.code == "no_responders"


def test_wait_for_a_worker_that_appears_later(client, start_worker, broker):
    result: list[bytes] = []
    caller = threading.Thread(target=lambda: result.append(client.request("late", b"hi", timeout=scaled(5), wait=True)))
    caller.start()
    time.sleep(0.5)
    assert caller.is_alive() and not result
    start_worker(broker.endpoint, {"late": echo})
    caller.join(scaled(5))
    assert result == [b"hi"]


def test_remote_error_carries_name_message_and_traceback(client, start_worker, broker):
    def fail(job: Job) -> bytes:
        raise KeyError("missing thing")

    start_worker(broker.endpoint, {"fail": fail})
    with pytest.raises(zeromesh.RemoteError) as info:
        client.request("fail", b"")
    exc = info.value
    assert (exc.code, exc.name) == ("remote", "KeyError")
    assert "missing thing" in exc.message
    assert "Traceback" in exc.traceback and "in fail" in exc.traceback


def test_client_deadline_when_no_broker_answers():
    from ..conftest import free_port

    with zeromesh.Client(f"tcp://127.0.0.1:{free_port()}", green=False) as client:
        t0 = time.monotonic()
        with pytest.raises(zeromesh.TimeoutError):
            client.request("echo", b"", timeout=0.3)
        assert time.monotonic() - t0 < scaled(0.3 + client.request_margin + 0.5)
        with pytest.raises(zeromesh.TimeoutError):
            client.push("q", b"", timeout=0.3)


def test_a_thread_caller_reads_past_what_is_not_its_answer(zctx):
    """A scripted broker (raw ROUTER) answers each request after some noise: a malformed
    message, a stale REPLY for another id, a REPLY of two items; then an ERROR, and a ping."""
    import zmq

    from zeromesh.protocol import codec, wire

    router = zctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")

    def broker() -> None:
        def answer(peer, *messages):
            for frames in messages:
                router.send_multipart([peer, *frames])

        reply = lambda re, body: codec.pack_item(wire.REPLY, {"id": "b", "re": re}, body)  # noqa: E731
        for _ in range(3):
            peer, *frames = router.recv_multipart()
            env = codec.unpack(frames)
            rid = env.header["id"]
            if env.command == wire.HEARTBEAT:
                answer(peer, codec.pack_control(wire.HEARTBEAT, {"id": "hb", "epoch": "e9"}))
            elif env.items[0][1] == b"first":
                answer(
                    peer,
                    [b"ZM\x01\x07", b"\xc1"],  # not msgpack
                    [b"not a command frame"],  # not ZMSH/1 at all
                    reply("someone-else", b"stale"),  # an earlier call's late answer
                    codec.pack_items(wire.REPLY, [({"id": "b1", "re": "x"}, b"no"), ({"id": "b2", "re": rid}, b"yes")]),
                )
            else:
                answer(
                    peer,
                    reply("late-again", b"stale"),
                    codec.pack_control(
                        wire.ERROR,
                        {"id": "e", "re": rid, "code": "remote", "name": "KeyError", "message": "no such card"},
                    ),
                )

    thread = threading.Thread(target=broker, daemon=True)
    thread.start()
    with zeromesh.Client(f"tcp://127.0.0.1:{port}", green=False) as client:
        assert client.request("svc", b"first", timeout=scaled(5)) == b"yes"
        with pytest.raises(zeromesh.RemoteError) as info:
            client.request("svc", b"second", timeout=scaled(5))
        assert (info.value.name, info.value.message) == ("KeyError", "no such card")
        assert client.ping(timeout=scaled(5)) == "e9"
    thread.join(scaled(5))
    router.close(linger=0)
