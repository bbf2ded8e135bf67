# SPDX-License-Identifier: MIT
"""Durable jobs under mixed faults: workers, the broker and Redis are SIGKILLed and restarted
while jobs are pushed and handled. Nothing confirmed may be lost; every duplicate is counted
and printed, and duplicates must stay a small fraction of the confirmed jobs (what a fault
really costs: the jobs in flight when it struck), not a multiple of what the broker held."""

from __future__ import annotations

import collections
import signal
import threading
import time

import pytest

from zeromesh import Client, ZeromeshError

from ..conftest import RedisServer, scaled, wait_until
from .conftest import restart_on_same_ports

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DURABLE = "[queues.orders]\ndurable = true\n"
TOTAL = 4000
CREDIT = 20


class Producer(threading.Thread):
    """Pushes TOTAL jobs in slices; what a fault leaves unconfirmed goes again under the same ids."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.confirmed: list[str] = []
        self.failures = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with Client(self.endpoint, green=False) as client:
                for start in range(0, TOTAL, 100):
                    pending = [(None, b"order-%d" % n) for n in range(start, start + 100)]
                    while pending:
                        pending = self._push(client, pending)
                    time.sleep(0.02)  # a steady stream, so faults strike mid-traffic
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _push(self, client: Client, pending: list[tuple[str | None, bytes]]) -> list:
        if all(jid is None for jid, _ in pending):
            try:
                self.confirmed += client.push_many("orders", [b for _, b in pending], timeout=scaled(15))
                return []
            except ZeromeshError as exc:
                self.failures += 1
                self.confirmed += getattr(exc, "accepted", [])
                time.sleep(0.2)
                return list(getattr(exc, "unconfirmed", []))
        left = []
        for jid, body in pending:
            try:
                self.confirmed.append(client.push("orders", body, timeout=scaled(15), id=jid))
            except ZeromeshError:
                self.failures += 1
                left.append((jid, body))
                time.sleep(0.2)
        return left


def test_mixed_faults_lose_nothing_and_duplicate_little(broker_factory, worker_process, tmp_path):
    rdir = tmp_path / "redis"
    rdir.mkdir()
    extra = ["--appendonly", "yes", "--appendfsync", "always"]  # Redis itself keeps what it confirmed
    redis = RedisServer(rdir, extra=extra).start()
    env = {"ZEROMESH_REDIS_URL": redis.url}
    broker = broker_factory(DURABLE, env=env)
    args = ("--queue", "orders", "--sleep", "0.001", "--concurrency", "4", "--credit", str(CREDIT))
    workers = {label: worker_process(broker.endpoint, *args, label=label) for label in ("w1", "w2")}
    producer = Producer(broker.endpoint)
    producer.start()
    faults: list[str] = []

    def progress(n: int) -> None:
        wait_until(
            lambda: len(producer.confirmed) >= n or not producer.is_alive(), scaled(60), message=f"{n} confirmed pushes"
        )

    try:
        progress(500)
        workers["w1"].signal(signal.SIGKILL)
        workers["w1"] = worker_process(broker.endpoint, *args, label="w1")
        faults.append("worker w1")
        progress(1200)
        redis.kill()
        time.sleep(0.5)
        redis = RedisServer(rdir, extra=extra).start()
        faults.append("redis")
        progress(2000)
        broker.kill()
        time.sleep(0.3)
        broker = restart_on_same_ports(broker_factory, broker, config_text=DURABLE, env=env)
        faults.append("broker")
        progress(2800)
        workers["w2"].signal(signal.SIGKILL)
        workers["w2"] = worker_process(broker.endpoint, *args, label="w2")
        faults.append("worker w2")
        progress(3400)
        redis.kill()
        time.sleep(0.5)
        redis = RedisServer(rdir, extra=extra).start()
        faults.append("redis")
        producer.join(scaled(120))
        assert not producer.is_alive() and producer.error is None, producer.error
        confirmed = set(producer.confirmed)
        assert len(confirmed) == TOTAL

        def done() -> set[str]:
            return {parts[0] for w in workers.values() for parts in w.lines("done")}

        wait_until(lambda: confirmed <= done(), scaled(90), interval=0.2, message="every confirmed job handled")
        time.sleep(2.0)  # a redelivery still under way would show now
        runs = collections.Counter(parts[0] for w in workers.values() for parts in w.lines("start"))
        duplicates = sum(1 for jid in confirmed if runs[jid] > 1)
        extra_runs = sum(runs[jid] - 1 for jid in confirmed if runs[jid] > 1)
        attempts = collections.Counter(int(parts[1]) for w in workers.values() for parts in w.lines("start"))
        print(
            f"\nfaults: {', '.join(faults)}; confirmed {len(confirmed)}, handled {len(confirmed & done())}, "
            f"ran twice or more {duplicates} ({100.0 * duplicates / len(confirmed):.1f}%, {extra_runs} extra "
            f"runs), producer retries {producer.failures}, attempts seen {sorted(attempts.items())}"
        )
        # Two worker kills and one broker kill each cost at most what was in flight then: a worker's
        # credit, or every worker's credit plus the acks on their way. Redis kills cost nothing.
        assert duplicates <= 6 * CREDIT, f"{duplicates} duplicates for {faults}"
    finally:
        redis.stop()
