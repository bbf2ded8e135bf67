# SPDX-License-Identifier: MIT
"""A worker of several brokers never holds more than its credit while brokers come and go:
real brokers on loopback ports, saturated with slow jobs, a third one started mid-stream.
The worker runs more handler threads than its credit, so only the credit limits what runs."""

from __future__ import annotations

import collections
import threading
import time

import pytest

from zeromesh import Client, Job, Worker

from ..conftest import free_port, scaled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CREDIT = 4
JOB_S = 0.3
JOIN_BOUND_S = 5.0
"""From the third broker's first job pushed to its first job handled, at most (scaled)."""


def held_by(broker, label: str) -> int:
    with Client(broker.endpoint, broker.pub_endpoint, green=False) as c:
        return sum(w["held"] for w in c.status()["workers"] if w["label"] == label)


class Sampler:
    """Samples the held figures of the brokers' status until stopped. Two brokers are never read at
    the same instant, and a job may move from one read early to one read late, so each round reads
    every broker twice and counts each broker's lower figure: a job that finished between the two
    reads is not counted twice, one held throughout is counted."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.brokers: list = []
        self.most = 0
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            brokers = list(self.brokers)
            first = [held_by(b, self.label) for b in brokers]
            second = [held_by(b, self.label) for b in brokers]
            self.most = max(self.most, sum(map(min, first, second)))
            self.rounds += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(scaled(10))


def test_a_joining_broker_gets_only_what_is_free_and_the_total_never_exceeds_the_credit(broker_factory):
    bs = [broker_factory(None, args=["--name", f"b{i}"], start=i < 2) for i in range(3)]
    running = 0
    most = 0
    lock = threading.Lock()
    handled: list[str] = []
    first_b2: list[float] = []
    # More handler threads than credit: only the credit keeps the handlers running at once within 4.
    w = Worker(",".join(b.endpoint for b in bs), concurrency=2 * CREDIT, credit=CREDIT, label="credit")

    @w.handler("slow")
    def slow(job: Job) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(JOB_S)
        with lock:
            running -= 1
            handled.append(job.text)
            if job.text.startswith("b2-") and not first_b2:
                first_b2.append(time.monotonic())

    w.start()
    sampler = Sampler("credit")
    producers: list[Client] = []
    try:

        def first_two_credits() -> list[int]:
            found = []
            for b in bs[:2]:
                with Client(b.endpoint, b.pub_endpoint, green=False) as c:
                    found += [e["credit"] for e in c.status()["workers"] if e["label"] == "credit"]
            return sorted(found)

        wait_until(lambda: first_two_credits() == [2, 2], 10, 0.1, "the credit split 2/2 over the first two brokers")
        sampler.brokers = bs[:2]
        per_broker = 40
        for i, b in enumerate(bs[:2]):
            producers.append(Client(b.endpoint, b.pub_endpoint, green=False))
            producers[-1].push_many("slow", [f"b{i}-{n}".encode() for n in range(per_broker)])
        wait_until(lambda: len(handled) >= 2 * CREDIT, 10, 0.05, "the first two brokers' jobs being handled")
        bs[2].start()
        producers.append(Client(bs[2].endpoint, bs[2].pub_endpoint, green=False))
        joined = 10
        producers[-1].push_many("slow", [f"b2-{n}".encode() for n in range(joined)])
        pushed_at = time.monotonic()
        sampler.brokers = bs
        wait_until(lambda: first_b2, JOIN_BOUND_S, 0.02, "a job of the joining broker handled")
        served_after = first_b2[0] - pushed_at
        wait_until(lambda: sum(t.startswith("b2-") for t in handled) >= joined, 30, 0.05, "the joining broker's jobs")
    finally:
        sampler.stop()
        for c in producers:
            c.close()
        w.stop(grace=scaled(2))
    by_broker = collections.Counter(text.split("-")[0] for text in handled)
    print(
        f"credit {CREDIT}: handled {dict(by_broker)}; most running at once {most}; most held by the brokers "
        f"{sampler.most} over {sampler.rounds} samples; the joining broker's first job done {served_after:.2f}s "
        "after its push"
    )
    assert sampler.rounds >= 10
    assert most <= CREDIT, f"{most} handlers ran at once with credit {CREDIT}"
    assert sampler.most <= CREDIT, f"the brokers held {sampler.most} jobs for a worker of credit {CREDIT}"


def test_a_broker_that_is_down_takes_no_share_of_the_credit(broker, tmp_path):
    """A worker whose list starts with a broker that is down (nothing listens there) serves the
    live one with its whole credit: its READY waits for a handshake, so it claims nothing."""
    lock = threading.Lock()
    state = {"running": 0, "most": 0}

    def slow(job) -> None:
        with lock:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
        time.sleep(0.3)
        with lock:
            state["running"] -= 1

    worker = Worker(f"tcp://127.0.0.1:{free_port()},{broker.endpoint}", concurrency=4, credit=4)
    worker.handler("q")(slow)
    worker.start()
    try:
        assert worker.wait_ready(scaled(5))
        with Client(broker.endpoint) as client:
            client.push_many("q", [b"x"] * 12)
            time.sleep(scaled(1.0))
        print(f"\nat most {state['most']} running at once on the live broker")
        assert state["most"] == 4
    finally:
        worker.stop(grace=scaled(2))
