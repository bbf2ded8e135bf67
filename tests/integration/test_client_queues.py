# SPDX-License-Identifier: MIT
"""Work queues through the Python client and worker against a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from zeromesh import DeadLetter, Job

from ..conftest import scaled, wait_until
from .conftest import wait_registered

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def queue_status(client, name):
    return client.status()["queues"].get(name, {})


def drained(client, name, acked):
    q = queue_status(client, name)
    return q.get("depth") == 0 and q.get("in_flight") == 0 and q.get("acked") == acked


def test_push_is_confirmed_and_queued(client):
    job_id = client.push("q", "hello", headers={"k": "v"})
    assert isinstance(job_id, str) and job_id
    q = queue_status(client, "q")
    assert q["depth"] == 1 and q["enqueued"] == 1
    info = client.trace(job_id)
    assert info["state"] == "queued" and info["queue"] == "q"


def test_push_many_through_two_workers_acked_exactly_once(client, start_worker, broker):
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def handle(job: Job) -> None:
        with lock:
            seen[job.id] += 1

    start_worker(broker.endpoint, {"bulk": handle}, concurrency=4, label="a")
    start_worker(broker.endpoint, {"bulk": handle}, concurrency=4, label="b")
    t0 = time.monotonic()
    ids = client.push_many("bulk", (f"job {i}" for i in range(10_000)))
    assert len(ids) == len(set(ids)) == 10_000
    wait_until(lambda: len(seen) >= 10_000, 30, message="10,000 jobs handled")
    wait_until(lambda: drained(client, "bulk", 10_000), 10, message="queue drained and acked")
    elapsed = time.monotonic() - t0
    assert set(seen) == set(ids)
    assert max(seen.values()) == 1, "a job was delivered twice without any failure"
    workers = {w["label"]: w for w in client.status()["workers"]}
    assert workers["a"]["held"] == 0 and workers["b"]["held"] == 0
    print(f"10,000 jobs pushed, handled and acked in {elapsed:.2f}s")


def test_killed_worker_loses_no_job(client, start_worker, worker_process, broker):
    victim = worker_process(broker.endpoint, "--queue", "kq", "--sleep", "0.005", "--concurrency", "2", label="victim")
    wait_registered(client, "victim")
    ids = client.push_many("kq", (b"x" for _ in range(2000)))
    wait_until(lambda: len(victim.lines("done")) >= 200, 20, message="victim busy")
    victim.signal(signal.SIGKILL)
    victim.wait(5)
    survivor_seen: set[str] = set()
    lock = threading.Lock()

    def handle(job: Job) -> None:
        with lock:
            survivor_seen.add(job.id)

    start_worker(broker.endpoint, {"kq": handle}, label="survivor")
    victim_done = {line[0] for line in victim.lines("done")}
    wait_until(lambda: victim_done | survivor_seen >= set(ids), 20, message="every job processed")
    assert len(victim_done) < len(ids) / 2, "the victim was killed mid-stream"
    q = wait_until(
        lambda: (lambda q: q if q["depth"] == q["in_flight"] == 0 else None)(queue_status(client, "kq")),
        10,
        message="queue drained",
    )
    assert q["acked"] >= len(ids) - len(victim_done)
    assert client.status()["counters"].get("workers_lost", 0) == 1


def test_nack_retry_then_dead_letter_list_and_replay(broker_factory, start_worker, tmp_path):
    broker = broker_factory(config_text="[queues.flaky]\nmax_attempts = 3\n")
    from zeromesh import Client

    attempts: list[tuple[str, int, str | None]] = []
    healthy = threading.Event()
    handled_ok: list[str] = []

    def handle(job: Job) -> None:
        if healthy.is_set():
            handled_ok.append(job.text)
            return
        attempts.append((job.id, job.attempt, job.error))
        if job.text == "poison":
            raise DeadLetter("cannot parse")
        raise ValueError(f"broken {job.attempt}")

    with Client(broker.endpoint, broker.pub_endpoint) as client:
        start_worker(broker.endpoint, {"flaky": handle}, concurrency=1)
        flaky = client.push("flaky", "flaky")
        wait_until(lambda: client.dead_letters("flaky"), 10, message="dead letter")
        assert [a for a in attempts if a[0] == flaky] == [
            (flaky, 1, None),
            (flaky, 2, "ValueError: broken 1"),
            (flaky, 3, "ValueError: broken 2"),
        ]
        poison = client.push("flaky", "poison")
        wait_until(lambda: len(client.dead_letters("flaky")) == 2, 10, message="second dead letter")
        assert [a[1] for a in attempts if a[0] == poison] == [1]  # DeadLetter: no retry
        items = {i["id"]: i for i in client.dead_letters("flaky")}
        assert items[flaky]["attempt"] == 3 and "broken 3" in items[flaky]["error"]
        assert "DeadLetter: cannot parse" in items[poison]["error"]

        env = dict(broker.env)
        cli = [sys.executable, "-m", "zeromesh"]
        out = subprocess.run(
            [*cli, "dead-letters", "list", "flaky", "--json"],
            env=env,
            capture_output=True,
            timeout=scaled(20),
            text=True,
        )
        assert out.returncode == 0, out.stderr
        assert {flaky, poison} <= set(out.stdout.split('"')), out.stdout

        healthy.set()
        assert client.replay("flaky", ids=[flaky]) == 1
        wait_until(lambda: "flaky" in handled_ok, 10, message="replayed job handled")
        out = subprocess.run(
            [*cli, "dead-letters", "replay", "flaky"], env=env, capture_output=True, timeout=scaled(20), text=True
        )
        assert out.returncode == 0 and "replayed 1" in out.stdout, (out.stdout, out.stderr)
        wait_until(lambda: "poison" in handled_ok, 10, message="replayed via CLI and handled")
        assert client.dead_letters("flaky") == []
        assert client.purge("flaky") == 0


def test_cpu_bound_handler_keeps_its_worker_alive(client, start_worker, broker):
    # Longer than the broker's 3 s liveness; ZEROMESH_TEST_BURN_S=10 for the long version.
    burn_s = scaled(float(os.environ.get("ZEROMESH_TEST_BURN_S", "4.5")))
    calls: list[int] = []

    def burn(job: Job) -> None:
        calls.append(job.attempt)
        end = time.monotonic() + burn_s
        n = 0
        while time.monotonic() < end:  # pure Python: holds the GIL except at switch intervals
            n += 1

    start_worker(broker.endpoint, {"burn": burn}, concurrency=1, label="burner")
    client.push("burn", b"")
    wait_until(lambda: drained(client, "burn", 1), burn_s + 5, message="burn job acked")
    assert calls == [1]
    status = client.status()
    assert status["counters"].get("workers_lost", 0) == 0
    assert [w["label"] for w in status["workers"]] == ["burner"]


def test_extend_keeps_the_lease(broker_factory, start_worker):
    broker = broker_factory(config_text="[queue_defaults]\nlease_s = 1.0\n")
    from zeromesh import Client

    calls: Counter[str] = Counter()

    def slow(job: Job) -> None:
        calls[job.name] += 1
        for _ in range(6):
            if job.name == "extended":
                job.extend(1.0)
            time.sleep(0.4)

    with Client(broker.endpoint) as client:
        start_worker(broker.endpoint, {"extended": slow, "plain": slow}, concurrency=4)
        extended = client.push("extended", b"")
        plain = client.push("plain", b"")
        wait_until(lambda: client.trace(extended)["state"] == "done", 10, message="extended job done")
        assert calls["extended"] == 1
        assert client.trace(extended)["attempt"] == 1
        # The control: without EXTEND the broker takes the job back after its 1 s lease.
        wait_until(lambda: calls["plain"] >= 2, 5, message="plain job redelivered")
        assert client.trace(plain)["attempt"] >= 2


def test_sigterm_finishes_running_jobs_and_hands_back_the_rest(client, worker_process, start_worker, broker):
    wp = worker_process(
        broker.endpoint,
        "--queue",
        "slow",
        "--sleep",
        "1.0",
        "--concurrency",
        "2",
        "--credit",
        "8",
        "--grace",
        "5",
        label="graceful",
    )
    wait_registered(client, "graceful")
    ids = client.push_many("slow", (b"" for _ in range(12)))
    wait_until(lambda: len(wp.lines("start")) == 2, 10, message="two jobs running")
    wait_until(lambda: queue_status(client, "slow").get("in_flight") == 8, 5, message="8 held by the worker")
    wp.signal(signal.SIGTERM)
    assert wp.wait(10) == 0, wp.log()
    started = {line[0] for line in wp.lines("start")}
    done = {line[0] for line in wp.lines("done")}
    assert started == done and len(done) == 2, "running jobs finish; queued ones are not started"
    # The broker may read our ADMIN before the worker's last ACKs and DISCONNECT: poll.
    wait_until(
        lambda: (lambda q: (q["depth"], q["in_flight"], q["acked"]) == (10, 0, 2))(queue_status(client, "slow")),
        5,
        message="2 acked, 10 handed back",
    )

    rest: dict[str, int] = {}

    def handle(job: Job) -> None:
        rest[job.id] = job.attempt

    start_worker(broker.endpoint, {"slow": handle})
    wait_until(lambda: len(rest) == 10, 10, message="handed-back jobs handled")
    assert set(rest) == set(ids) - done
    assert set(rest.values()) == {1}, "a handed-back job is not a failed attempt"


def test_queue_full_refuses_and_push_many_reports_what_was_accepted(broker_factory):
    # Without Redis there is nowhere to spill: past max_depth, producers are refused.
    broker = broker_factory(config_text="[queues.small]\nmax_depth = 20\n", env={"ZEROMESH_REDIS_URL": "none"})
    from zeromesh import Client, QueueFullError

    with Client(broker.endpoint) as client:
        with pytest.raises(QueueFullError) as info:
            client.push_many("small", (b"x" for _ in range(50)), batch=10, window=30)
        accepted = info.value.accepted
        assert len(accepted) == 20 and info.value.code == "queue_full"
        assert queue_status(client, "small")["depth"] == 20
        with pytest.raises(QueueFullError):
            client.push("small", b"one more")


@pytest.mark.parametrize(
    "knows, expect",
    [
        ((), ["PUSH_PACKED", "PUSH_BATCH", "PUSH"]),  # revision 1: items only
        ((0x11,), ["PUSH_PACKED", "PUSH_BATCH"]),  # revisions 2 and 3: batches, not packed
    ],
    ids=["revision-1", "revision-3"],
)
def test_push_many_falls_back_for_an_older_broker(zctx, knows, expect):
    """An older broker answers a form it does not know with unknown_command: the client sends
    the same jobs in the next form (PUSH_PACKED, then PUSH_BATCH, then PUSH) and they all land."""
    import zmq

    from zeromesh import Client
    from zeromesh.protocol import codec, wire

    router = zctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    seen: list[str] = []
    stop = threading.Event()

    def old_broker():
        while not stop.is_set():
            if not router.poll(50):
                continue
            peer, *frames = router.recv_multipart()
            command = frames[0][3]
            seen.append(wire.COMMAND_NAMES.get(command, "?"))
            if command != wire.PUSH and command not in knows:  # what that revision says
                mid = codec.msgpack.unpackb(frames[1])["id"]
                router.send_multipart(
                    [
                        peer,
                        *codec.pack_control(
                            wire.ERROR,
                            {
                                "id": "e",
                                "re": mid,
                                "code": wire.E_UNKNOWN_COMMAND,
                                "message": f"unknown command 0x{command:02x}",
                            },
                        ),
                    ]
                )
                continue
            env = codec.unpack(frames)
            ids = env.header["ids"] if command == wire.PUSH_BATCH else [h["id"] for h, _ in env.items]
            router.send_multipart([peer, *codec.pack_control(wire.CONFIRM, {"id": "c", "ids": ids})])

    thread = threading.Thread(target=old_broker, daemon=True)
    thread.start()
    client = Client(f"tcp://127.0.0.1:{port}", context=zctx)
    try:
        ids = client.push_many("q", [b"a", b"b", b"c"], batch=2, timeout=5)
        assert len(ids) == 3
        assert list(dict.fromkeys(seen)) == expect  # each form tried in turn, the last one used from then on
    finally:
        client.close()
        stop.set()
        thread.join(2)
        router.close(linger=0)
