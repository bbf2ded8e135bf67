# SPDX-License-Identifier: MIT
"""Worker(pool="gevent") against a scripted fake broker: the hub owns the socket, a real thread the beats.

The worker runs in a patched subprocess (render_green_main.py); the test is
the broker, a raw ROUTER, and checks what reaches the wire.
"""

from __future__ import annotations

import signal
import time

import pytest

from zeromesh.protocol import codec, wire

from ..conftest import scaled
from .test_worker_wire import FakeBroker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def fake(zsocket):
    return FakeBroker(zsocket)


def request(rid: str, service: str, body: bytes, timeout_ms: int = 10_000) -> list[bytes]:
    return codec.pack_item(wire.REQUEST, {"id": rid, "service": service, "timeout_ms": timeout_ms}, body)


def job(jid: str, body: bytes) -> tuple[dict, bytes]:
    return {"id": jid, "queue": "nap-job", "attempt": 1, "trace": jid, "lease_ms": 60_000}, body


def collect(fake: FakeBroker, until, timeout: float) -> list[tuple[float, bytes, codec.Envelope]]:
    """Every message (heartbeats too) as (arrival, peer, envelope) until until(messages) or timeout."""
    got: list[tuple[float, bytes, codec.Envelope]] = []
    deadline = time.monotonic() + scaled(timeout)
    while not until(got):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out; got {[e.name for _, _, e in got]}"
        if fake.sock.poll(min(remaining, 0.1) * 1000):
            peer, *frames = fake.sock.recv_multipart()
            got.append((time.monotonic(), peer, codec.unpack(frames)))
    return got


def answers(got) -> dict[str, bytes]:
    return {h["re"]: body for _, _, env in got if env.command == wire.REPLY for h, body in env.items}


def errors(got) -> dict[str, dict]:
    return {env.header["re"]: env.header for _, _, env in got if env.command == wire.ERROR}


def test_requests_beyond_the_pool_wait_their_turn_and_come_back_batched(fake, green_worker):
    # credit 12 > concurrency 3: nine requests wait in the worker for a free greenlet.
    green_worker(fake.endpoint, "--concurrency", "3", "--credit", "12", label="g1")
    peer, ready = fake.accept()
    assert ready.header["credit"] == 12 and ready.header["batch"] is True
    started = time.monotonic()
    fake.send(
        peer,
        codec.pack_items(
            wire.REQUEST, [({"id": f"r{i}", "service": "nap", "timeout_ms": 10_000}, b"0.2") for i in range(12)]
        ),
    )
    got = collect(fake, lambda g: len(answers(g)) == 12, timeout=10)
    elapsed = time.monotonic() - started
    assert answers(got) == {f"r{i}": b"0.2" for i in range(12)}
    # Three at a time: four waves of 0.2 s, never more at once.
    assert scaled(0.75) <= elapsed < scaled(3), elapsed
    replies = [env for _, _, env in got if env.command == wire.REPLY]
    assert len(replies) < 12, "replies finishing together should share a REPLY message"


def test_heartbeats_keep_coming_while_a_greenlet_blocks_the_hub(fake, green_worker):
    green_worker(fake.endpoint, "--concurrency", "2", "--heartbeat", "0.2", label="g2")
    peer, _ = fake.accept()
    collect(fake, lambda g: any(e.command == wire.HEARTBEAT for _, _, e in g), timeout=5)
    sent = time.monotonic()
    fake.send(peer, request("burn", "burn", b"2.0"))
    got = collect(fake, lambda g: "burn" in answers(g), timeout=15)
    replied = next(t for t, _, e in got if e.command == wire.REPLY)
    beats = [t for t, _, e in got if e.command == wire.HEARTBEAT and sent + 0.3 < t < replied - 0.1]
    # The hub ran nothing else for 2 s; beats every 0.2 s came from the beat thread.
    assert len(beats) >= 4, f"{len(beats)} heartbeats in {replied - sent:.1f}s of a blocked hub"
    assert answers(got)["burn"].startswith(b"burnt")


def test_cancel_stops_the_handler_greenlet(fake, green_worker):
    green_worker(fake.endpoint, "--concurrency", "2", label="g3")
    peer, _ = fake.accept()
    fake.send(peer, request("slow", "nap", b"30"))
    time.sleep(0.3)
    fake.send(peer, codec.pack_control(wire.CANCEL, {"id": "c1", "re": "slow"}))
    got = collect(fake, lambda g: "slow" in errors(g), timeout=5)
    assert errors(got)["slow"]["code"] == wire.E_CANCELLED
    # The greenlet is free again: a new request runs at once.
    fake.send(peer, request("after", "ping", b""))
    assert answers(collect(fake, lambda g: "after" in answers(g), timeout=5))["after"] == b"pong"


def test_sigterm_finishes_running_work_and_hands_back_the_rest(fake, green_worker):
    proc = green_worker(fake.endpoint, "--concurrency", "1", "--credit", "3", label="g4")
    peer, _ = fake.accept()
    fake.send(peer, codec.pack_items(wire.JOB, [job("j1", b"0.5"), job("j2", b"0"), job("j3", b"0")]))
    time.sleep(0.2)  # j1 running, j2 and j3 waiting for the one greenlet
    proc.signal(signal.SIGTERM)
    got = collect(fake, lambda g: any(e.command == wire.DISCONNECT for _, _, e in g), timeout=10)
    names = [e.name for _, _, e in got if e.command != wire.HEARTBEAT]
    acked = [i for _, _, e in got if e.command == wire.ACK for i in e.header["ids"]]
    assert names[0] == "CREDIT" and names[-1] == "DISCONNECT", names
    assert acked == ["j1"], "the running job finishes; the waiting ones go back unstarted"
    assert proc.wait(10) == 0


def test_a_frozen_process_starts_afresh(fake, green_worker, tmp_path):
    proc = green_worker(fake.endpoint, "--concurrency", "2", "--heartbeat", "0.2", label="g5")
    first, _ = fake.accept()
    beat = codec.pack_control(wire.HEARTBEAT, {"id": "hb", "epoch": "e1"})

    def beating(seconds: float) -> None:
        # As a broker does: it beats to the worker (until it drops it), so only the freeze is news.
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            fake.send(first, beat)
            time.sleep(0.1)

    beating(0.5)
    proc.signal(signal.SIGSTOP)
    beating(1.5)  # well past 3 heartbeats of 0.2 s: a broker would have dropped it
    proc.signal(signal.SIGCONT)
    got = collect(fake, lambda g: any(e.command == wire.READY and p != first for _, p, e in g), timeout=10)
    again = next(p for _, p, e in got if e.command == wire.READY and p != first)
    fake.send(again, beat)
    fake.send(again, request("p", "ping", b""))
    assert answers(collect(fake, lambda g: "p" in answers(g), timeout=5))["p"] == b"pong"
    assert "this process stalled for" in (tmp_path / "g5.log").read_text()
