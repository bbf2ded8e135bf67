# SPDX-License-Identifier: MIT
"""Pause, resume and purge a queue, and hold it to a rate and a number of jobs in flight, through
real brokers and Python workers; across two brokers where the control is mesh-wide."""

from __future__ import annotations

import threading
import time

import pytest

from zeromesh import Client

from ..conftest import scaled, wait_until
from .wire_helpers import admin, dealer

pytestmark = pytest.mark.timeout(90)


class Counting:
    """A handler that records when each job ran and how many ran at once."""

    def __init__(self, hold_s: float = 0.0) -> None:
        self.hold_s = hold_s
        self.lock = threading.Lock()
        self.times: list[float] = []
        self.running = 0
        self.most = 0

    def __call__(self, job) -> None:
        with self.lock:
            self.times.append(time.monotonic())
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.hold_s)
        with self.lock:
            self.running -= 1


def test_pause_holds_every_broker_and_resume_lets_go(broker_factory, start_worker):
    east, west = broker_factory(args=["--name", "east"]), broker_factory(args=["--name", "west"])
    handler = Counting()
    start_worker(f"{east.endpoint},{west.endpoint}", {"mail": handler}, concurrency=2)
    with Client(west.endpoint) as through_west, Client(east.endpoint) as through_east:
        assert through_east.admin("pause", queue="mail") == {"queue": "mail", "paused": True}
        time.sleep(scaled(1.5))  # west reads the pause from Redis within a second
        for n in range(10):
            through_west.push("mail", f"w{n}".encode())
            through_east.push("mail", f"e{n}".encode())
        time.sleep(scaled(1.0))
        assert handler.times == [], "a paused queue dispatched"
        status = through_west.status()["queues"]["mail"]
        assert status["paused"] is True and status["depth"] >= 10
        through_east.admin("resume", queue="mail")
        wait_until(lambda: len(handler.times) == 20, scaled(10), 0.05, "every job after resume")


def test_purge_queue_counts_memory_and_redis_and_spares_jobs_in_flight(broker, start_worker, zsocket):
    handler = Counting(hold_s=1.0)
    start_worker(broker.endpoint, {"mail": handler}, concurrency=1, credit=1)
    with Client(broker.endpoint) as client:
        ids = [client.push("mail", f"j{n}".encode()) for n in range(30)]
        wait_until(lambda: len(handler.times) == 1, scaled(5), 0.02, "the first job running")
        answer = client.admin("purge_queue", queue="mail")
        print(f"\npurge_queue: {answer}")
        assert answer["purged"] == 29 and answer["in_memory"] + answer["in_redis"] == 29
        time.sleep(scaled(1.5))
        assert len(handler.times) == 1  # the one in flight finished; nothing else ran
        assert client.status()["queues"]["mail"]["depth"] == 0
        assert admin(dealer(zsocket, broker.endpoint), "trace", id=ids[0])["state"] in ("done", "in_flight")


def test_max_per_second_holds_over_ten_seconds(broker_factory, start_worker):
    broker = broker_factory("[queues.mail]\nmax_per_second = 20.0\n")
    handler = Counting()
    start_worker(broker.endpoint, {"mail": handler}, concurrency=4)
    with Client(broker.endpoint) as client:
        client.push_many("mail", [f"m{n}".encode() for n in range(400)])
        started = time.monotonic()
        time.sleep(10.0)
    ran = len(handler.times)
    window = [t for t in handler.times if t - started >= 1.0]  # after the first second's burst
    rate = len(window) / max(1e-9, (max(window) - min(window))) if len(window) > 1 else 0.0
    print(f"\nmax_per_second 20: {ran} jobs in 10 s, {rate:.1f}/s after the first second")
    assert 190 <= ran <= 225, ran  # 10 s at 20/s, plus at most one second's burst
    assert 18.0 <= rate <= 22.0, rate


def test_max_in_flight_holds_across_workers_and_brokers(broker_factory, start_worker):
    config = "[queues.mail]\nmax_in_flight = 4\n"
    east, west = broker_factory(config, args=["--name", "east"]), broker_factory(config, args=["--name", "west"])
    handler = Counting(hold_s=0.2)
    endpoints = f"{east.endpoint},{west.endpoint}"
    for b in (east, west):  # each shares the cap once it has seen the other (within a second)
        with Client(b.endpoint) as c:
            wait_until(lambda c=c: len(c.status()["brokers"]) == 2, scaled(5), 0.1, "both brokers registered")
    for _ in range(2):
        start_worker(endpoints, {"mail": handler}, concurrency=8, credit=8)
    with Client(east.endpoint) as e, Client(west.endpoint) as w:
        for n in range(40):
            (e if n % 2 else w).push("mail", f"x{n}".encode())
        wait_until(lambda: len(handler.times) == 40, scaled(20), 0.05, "every job")
    print(f"\nmax_in_flight 4 over two brokers and two workers: at most {handler.most} at once")
    assert handler.most <= 4
