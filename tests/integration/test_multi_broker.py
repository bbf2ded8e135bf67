# SPDX-License-Identifier: MIT
"""Several brokers on loopback ports, each its own --name on the test's Redis: workers serve every
broker within their credit, producers and callers move to another broker after failover_s,
subscribers hear every broker. Each test prints its counts."""

from __future__ import annotations

import collections
import threading
import time

import pytest
import zmq

from zeromesh import Client, Job, Worker, errors
from zeromesh.protocol import codec

from ..conftest import scaled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

FAILOVER_S = 1.5
DURABLE = "[broker]\nrecovery_s = 3.0\n\n[queues.orders]\ndurable = true\n"


@pytest.fixture
def brokers(broker_factory):
    """brokers(n, config) -> n brokers named b0..b(n-1) on the test's Redis."""

    def make(n: int, config: str | None = None):
        return [broker_factory(config, args=["--name", f"b{i}"]) for i in range(n)]

    return make


def endpoints(bs) -> str:
    return ",".join(b.endpoint for b in bs)


def pubs(bs) -> str:
    return ",".join(b.pub_endpoint for b in bs)


def worker_entries(b, label: str) -> list[dict]:
    with Client(b.endpoint, b.pub_endpoint, green=False) as c:
        return [w for w in c.status()["workers"] if w["label"] == label]


def test_a_worker_serves_every_broker_and_holds_no_more_than_its_credit(brokers):
    bs = brokers(3)
    credit = 4
    running = 0
    most = 0
    lock = threading.Lock()
    handled: list[str] = []
    w = Worker(endpoints(bs), concurrency=4, credit=credit, label="multi")

    @w.handler("slow")
    def slow(job: Job) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
            handled.append(job.text)

    w.start()
    try:
        # Registered with every broker, the credit split 2/1/1 in some rotation: 4 in all.
        def split_credits():
            entries = [worker_entries(b, "multi") for b in bs]
            found = sorted(e[0]["credit"] for e in entries if len(e) == 1)
            return found if found == [1, 1, 2] else None

        print("credit per broker:", wait_until(split_credits, 10, 0.1, "the credit split 2/1/1 over the three brokers"))
        per_broker = 20
        held_seen = 0
        producers = [Client(b.endpoint, b.pub_endpoint, green=False) for b in bs]
        try:
            for i, c in enumerate(producers):
                c.push_many("slow", [f"b{i}-{n}".encode() for n in range(per_broker)])

            def all_done():
                nonlocal held_seen
                held = sum(e["held"] for b in bs for e in worker_entries(b, "multi"))
                held_seen = max(held_seen, held)
                return len(handled) >= 3 * per_broker

            wait_until(all_done, 30, 0.05, "every job handled")
        finally:
            for c in producers:
                c.close()
        by_broker = collections.Counter(text.split("-")[0] for text in handled)
        print(f"handled {len(handled)}: {dict(by_broker)}; most running at once {most}; most held {held_seen}")
        assert by_broker == {"b0": per_broker, "b1": per_broker, "b2": per_broker}
        assert held_seen <= credit and most <= credit
    finally:
        w.stop(grace=scaled(2))


def test_a_worker_rebalances_when_a_broker_dies(brokers):
    bs = brokers(2)
    w = Worker(endpoints(bs), concurrency=2, credit=4, label="rebalance")
    w.handler("x")(lambda job: None)
    w.start()
    try:
        wait_until(
            lambda: all(e and e[0]["credit"] == 2 for e in (worker_entries(b, "rebalance") for b in bs)),
            10,
            0.1,
            "credit 2 and 2",
        )
        bs[0].kill()
        # The session to the dead broker is lost after its liveness (3 heartbeats): the other gets all 4.
        wait_until(
            lambda: (lambda e: e and e[0]["credit"] == 4)(worker_entries(bs[1], "rebalance")),
            15,
            0.2,
            "the surviving broker given the whole credit",
        )
    finally:
        w.stop(grace=scaled(2))


def test_producer_moves_within_failover_and_every_confirmed_durable_job_is_handled(brokers):
    bs = brokers(2, DURABLE)
    by_endpoint = {b.endpoint: b for b in bs}
    seen: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    w = Worker(endpoints(bs), concurrency=4, credit=8, label="orders")

    @w.handler("orders")
    def orders(job: Job) -> None:
        with lock:
            seen[job.text] += 1

    w.start()
    assert w.wait_ready(scaled(5))
    producer = Client(endpoints(bs), green=False, failover_s=FAILOVER_S)
    confirmed: list[str] = []
    failed: list[str] = []
    first = producer.current_endpoint
    killed_at = moved_after = None
    try:
        n = 0
        deadline = time.monotonic() + scaled(30)
        while time.monotonic() < deadline and (killed_at is None or moved_after is None or n < 400):
            body = f"order-{n}"
            try:
                producer.push("orders", body, timeout=10)
                confirmed.append(body)
                if killed_at is not None and moved_after is None:
                    moved_after = time.monotonic() - killed_at
            except errors.ZeromeshError as exc:
                failed.append(f"{body}: {exc}")
            n += 1
            if n == 150 and killed_at is None:
                by_endpoint[first].kill()
                killed_at = time.monotonic()
        assert moved_after is not None, "the producer never moved"
        assert producer.current_endpoint != first
        wait_until(lambda: all(seen[b] for b in confirmed), 30, 0.1, "every confirmed job handled")
    finally:
        producer.close()
        w.stop(grace=scaled(2))
    duplicates = sum(c - 1 for c in seen.values() if c > 1)
    print(
        f"confirmed {len(confirmed)}, handled {sum(1 for b in confirmed if seen[b])}, duplicates {duplicates}, "
        f"refused {len(failed)}, producer moved {moved_after:.2f}s after the kill"
    )
    assert not failed, failed[:3]
    # The push in flight is resent as soon as the client moves, not at its next resend (PUSH_RESEND_S, 2 s).
    assert moved_after <= FAILOVER_S + scaled(0.45)


@pytest.fixture
def echo_pair(brokers):
    """Two brokers and a worker on both serving "echo" and "slow" (sleeps; signals when it starts)."""
    bs = brokers(2)
    started = threading.Event()
    calls: collections.Counter[str] = collections.Counter()
    w = Worker(endpoints(bs), concurrency=4, label="echoes")
    w.handler("echo")(lambda job: job.body)

    @w.handler("slow")
    def slow(job: Job) -> bytes:
        calls[job.text] += 1
        started.set()
        time.sleep(1.0)
        return job.body

    w.start()
    wait_until(lambda: all(worker_entries(b, "echoes") for b in bs), 10, 0.1, "worker on both brokers")
    yield bs, started, calls
    w.stop(grace=scaled(2))


def kill_current(bs, client: Client) -> float:
    victim = next(b for b in bs if b.endpoint == client.current_endpoint)
    victim.kill()
    return time.monotonic()


def test_requests_recover_within_the_failover_bound(echo_pair):
    bs, _, _ = echo_pair
    c = Client(endpoints(bs), green=False, failover_s=FAILOVER_S)
    try:
        assert c.request("echo", b"before") == b"before"
        killed_at = kill_current(bs, c)
        outcomes = collections.Counter()
        while True:
            try:
                assert c.request("echo", b"after", timeout=5, idempotent=True) == b"after"
                break
            except errors.ZeromeshError as exc:
                outcomes[type(exc).__name__] += 1
            assert time.monotonic() - killed_at < scaled(15), "no recovery"
        took = time.monotonic() - killed_at
        print(f"first request answered {took:.2f}s after the kill (failures before: {dict(outcomes)})")
        assert took <= FAILOVER_S + scaled(2.5)
    finally:
        c.close()


def test_an_idempotent_request_in_flight_is_resent(echo_pair):
    bs, started, calls = echo_pair
    c = Client(endpoints(bs), green=False, failover_s=FAILOVER_S)
    result: dict = {}

    def call():
        t0 = time.monotonic()
        try:
            result["body"] = c.request("slow", b"again", timeout=10, idempotent=True)
        except errors.ZeromeshError as exc:
            result["error"] = exc
        result["took"] = time.monotonic() - t0

    try:
        caller = threading.Thread(target=call)
        caller.start()
        assert started.wait(scaled(5))
        kill_current(bs, c)
        caller.join(scaled(15))
        print(f"idempotent request: {result}, handler ran {calls['again']} times")
        assert result.get("body") == b"again", result
        assert calls["again"] == 2 and result["took"] < 10
    finally:
        c.close()


def test_a_request_in_flight_that_is_not_idempotent_fails_at_once(echo_pair):
    bs, started, calls = echo_pair
    c = Client(endpoints(bs), green=False, failover_s=FAILOVER_S)
    try:
        holder: dict = {}
        caller = threading.Thread(
            target=lambda: holder.update(exc=_raises(lambda: c.request("slow", b"once", timeout=10)))
        )
        caller.start()
        assert started.wait(scaled(5))
        killed_at = kill_current(bs, c)
        caller.join(scaled(15))
        took = time.monotonic() - killed_at
        exc = holder["exc"]
        print(f"not idempotent: {type(exc).__name__}: {exc} ({took:.2f}s after the kill)")
        assert isinstance(exc, errors.UnreachableError)
        assert "lost with the request in flight; not resent (not idempotent)" in str(exc)
        assert calls["once"] == 1 and took <= FAILOVER_S + scaled(2.5)
        assert c.request("echo", b"next") == b"next"  # the client carries on with the other broker
    finally:
        c.close()


def _raises(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc
    return None


def test_every_broker_down_says_so(brokers):
    bs = brokers(2)
    for b in bs:
        b.kill()
    c = Client(endpoints(bs), green=False, failover_s=FAILOVER_S, connect_timeout=0.5)
    try:
        t0 = time.monotonic()
        with pytest.raises(errors.UnreachableError, match="cannot reach any broker of"):
            c.request("echo", b"x", timeout=20)
        took = time.monotonic() - t0
        print(f"unreachable reported after {took:.2f}s")
        assert took < scaled(5)
    finally:
        c.close()


def test_a_subscriber_hears_events_published_through_each_broker(brokers):
    bs = brokers(3)
    c = Client(bs[0].endpoint, pubs(bs), green=False)
    sub = c.subscribe("news.")
    publishers = [Client(b.endpoint, b.pub_endpoint, green=False) for b in bs]
    try:
        got: dict[str, int] = collections.Counter()
        deadline = time.monotonic() + scaled(10)
        # Republish until each broker's first event arrives (the slow joiner), then count.
        while len(got) < 3 and time.monotonic() < deadline:
            for i, p in enumerate(publishers):
                p.publish(f"news.b{i}", b"hello")
            while (event := sub.next(timeout=0.1)) is not None:
                got[event.topic] += 1
        print(f"events per broker: {dict(got)}")
        assert set(got) == {"news.b0", "news.b1", "news.b2"}
    finally:
        sub.close()
        for p in publishers:
            p.close()
        c.close()


def test_gaps_are_per_broker(zsocket):
    """Two PUB sockets stand in for two brokers that name themselves (`broker`): sequences are
    judged per broker, and a broker never heard before is no gap."""
    ends = []
    pubs_ = []
    for _ in range(2):
        s = zsocket(zmq.PUB)
        port = s.bind_to_random_port("tcp://127.0.0.1")
        ends.append(f"tcp://127.0.0.1:{port}")
        pubs_.append(s)
    c = Client("tcp://127.0.0.1:1", ",".join(ends), green=False)
    sub = c.subscribe("t")
    try:

        def send(i, seq):
            pubs_[i].send_multipart(
                codec.pack_event(
                    "t", {"id": f"e{i}{seq}", "topic": "t", "seq": seq, "epoch": "E", "broker": f"b{i}"}, b""
                )
            )

        deadline = time.monotonic() + scaled(5)
        heard = set()
        while len(heard) < 2 and time.monotonic() < deadline:  # slow joiner: the same seq 1 until both heard
            send(0, 1)
            send(1, 1)
            while (e := sub.next(timeout=0.05)) is not None:
                heard.add(e.id[:2])
        assert heard == {"e0", "e1"}
        send(0, 2)
        send(1, 2)
        send(0, 4)
        gaps = {}
        deadline = time.monotonic() + scaled(5)
        while len(gaps) < 3 and time.monotonic() < deadline:
            e = sub.next(timeout=0.1)
            if e is not None and e.id in ("e02", "e12", "e04"):
                gaps[e.id] = e.gap
        print("gap per event:", gaps)
        assert gaps == {"e02": False, "e12": False, "e04": True}
    finally:
        sub.close()
        c.close()


def test_one_endpoint_behaves_as_before(broker):
    c = Client(broker.endpoint, broker.pub_endpoint, green=False)
    try:
        assert c.endpoints == [broker.endpoint] and c.current_endpoint == broker.endpoint
        w = Worker(broker.endpoint, concurrency=2, credit=5, label="single")
        w.handler("echo")(lambda job: job.body)
        w.start()
        try:
            wait_until(lambda: worker_entries(broker, "single"), 5, 0.05, "worker registered")
            assert worker_entries(broker, "single")[0]["credit"] == 5
            assert c.request("echo", b"one") == b"one"
        finally:
            w.stop(grace=scaled(2))
    finally:
        c.close()


def test_green_client_and_worker_fail_over(brokers, tmp_path):
    """gevent: a green client moves within failover_s, idempotent requests recover, a gevent worker
    on both brokers keeps serving through the survivor."""
    import sys
    from pathlib import Path

    from ..processes import ChildProcess

    bs = brokers(2)
    script = Path(__file__).resolve().parent / "multi_green_main.py"
    p = ChildProcess(
        "green-multi",
        [sys.executable, str(script), endpoints(bs), str(FAILOVER_S)],
        tmp_path / "green-multi.log",
        capture_stdout=True,
    ).start(wait=False)
    try:
        line = wait_until(
            lambda: next((x for x in p.stdout_lines if x.startswith("on ")), None), 20, 0.05, "the green client serving"
        )
        victim = next(b for b in bs if b.endpoint == line.split()[1])
        victim.kill()
        assert p.wait(scaled(60)) == 0, p.log()
        ok = next(x for x in p.stdout_lines if x.startswith("ok ")).split()
        print(
            f"green: moved to {ok[1]}, longest gap between answers {ok[2]}s, {ok[3]} failed calls, "
            f"{ok[4]}/200 jobs handled after the move"
        )
        assert ok[1] != victim.endpoint
        assert float(ok[2]) <= FAILOVER_S + scaled(2.5)
        assert ok[4] == "200"
    finally:
        p.kill()
