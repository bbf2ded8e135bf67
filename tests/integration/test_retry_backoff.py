# SPDX-License-Identifier: MIT
"""Retry backoff through a real broker and a real Python worker: a handler that fails three
times waits longer before each attempt, as the queue's policy says, while other jobs flow."""

from __future__ import annotations

import threading
import time

import pytest

from zeromesh import Client, Retry

from ..conftest import scaled, wait_until

pytestmark = pytest.mark.timeout(60)

POLICY = "[queues.mail]\nretry_base_s = 0.3\nretry_factor = 2.0\nretry_jitter = 0.1\nmax_attempts = 6\n"


def test_a_failing_job_backs_off_and_others_flow_meanwhile(broker_factory, start_worker):
    broker = broker_factory(POLICY)
    seen: dict[str, list[tuple[float, int, str]]] = {}
    lock = threading.Lock()

    def send(job):
        with lock:
            seen.setdefault(job.text, []).append((time.monotonic(), job.attempt, job.error))
            tries = len(seen[job.text])
        if job.text == "flaky" and tries <= 3:
            raise RuntimeError(f"provider down ({tries})")

    start_worker(broker.endpoint, {"mail": send}, concurrency=1)
    with Client(broker.endpoint) as client:
        client.push("mail", b"flaky")
        time.sleep(0.05)
        for n in range(5):  # pushed while flaky waits: they must not wait behind it
            client.push("mail", f"other-{n}".encode())
        wait_until(lambda: len(seen.get("flaky", [])) == 4, scaled(10), 0.05, "the fourth attempt")
    times = [t for t, _a, _e in seen["flaky"]]
    gaps = [b - a for a, b in zip(times, times[1:])]
    print("\ngaps between attempts: " + ", ".join(f"{g:.3f}s" for g in gaps))
    assert [a for _t, a, _e in seen["flaky"]] == [1, 2, 3, 4]
    assert "provider down (3)" in seen["flaky"][3][2]  # job.error tells the handler what happened last
    slack = 0.15 * (1 if scaled(1) == 1 else 3)
    for gap, wanted in zip(gaps, (0.3, 0.6, 1.2)):
        assert wanted * 0.9 - 0.01 <= gap <= wanted * 1.1 + slack, (gaps, wanted)
    others = [seen[f"other-{n}"][0][0] for n in range(5)]
    assert max(others) < times[1], "the other jobs waited behind the failing one"


def test_a_handler_names_its_own_wait_with_retry(broker_factory, start_worker):
    """Retry(in_=0.5) on a queue whose backoff would wait 5 s: the next attempt comes after 0.5 s."""
    broker = broker_factory("[queues.mail]\nretry_base_s = 5.0\nretry_jitter = 0.0\n")
    times: list[float] = []

    def send(job):
        times.append(time.monotonic())
        if len(times) == 1:
            raise Retry("the provider asked us to come back", in_=0.5)

    start_worker(broker.endpoint, {"mail": send}, concurrency=1)
    with Client(broker.endpoint) as client:
        client.push("mail", b"x")
        wait_until(lambda: len(times) == 2, scaled(4), 0.02, "the second attempt")
    gap = times[1] - times[0]
    print(f"\nRetry(in_=0.5): the next attempt came {gap:.3f}s later")
    assert 0.45 <= gap <= 0.5 + 0.3 * (1 if scaled(1) == 1 else 3), gap
    with pytest.raises(ValueError, match="0 or more"):
        Retry(in_=-1)
