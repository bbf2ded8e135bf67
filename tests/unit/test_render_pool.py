# SPDX-License-Identifier: MIT
"""GreenRunner, the gevent side of Worker(pool="gevent"): fed from another OS thread, bounded, cancellable."""
from __future__ import annotations

import threading

import gevent
import pytest
from zeromesh import Job, Worker
from zeromesh.green_pool import GreenRunner
from zeromesh.protocol import wire
from zeromesh.realthreads import RealEvent

pytestmark = pytest.mark.unit


def request(rid: str, body: bytes = b"") -> Job:
    return Job("request", "svc", {"id": rid, "timeout_ms": 5000}, body, RealEvent(), lambda item: None)


@pytest.fixture
def worker():
    w = Worker("tcp://127.0.0.1:1", concurrency=3, pool="gevent")
    yield w
    w.context.term()


def run_until(predicate, timeout: float = 2.0) -> None:
    with gevent.Timeout(timeout):
        while not predicate():
            gevent.sleep(0.005)


def test_gevent_mode_defaults(worker):
    assert worker.credit == 3 and worker.pool == "gevent"
    with pytest.raises(ValueError):
        Worker("tcp://127.0.0.1:1", pool="processes")


def test_jobs_put_from_another_thread_run_as_greenlets_bounded_by_the_pool(worker):
    results: list[tuple] = []
    running = [0, 0]  # now, most at once

    def handler(job: Job) -> bytes:
        running[0] += 1
        running[1] = max(running[1], running[0])
        gevent.sleep(0.02)
        running[0] -= 1
        return job.body

    worker.handler("svc")(handler)
    runner = GreenRunner(3, worker._run, results.append, RealEvent())
    feeder = threading.Thread(target=lambda: [runner.put(request(f"r{i}", b"%d" % i)) for i in range(10)])
    feeder.start()
    feeder.join()
    run_until(lambda: len(results) == 10)
    assert sorted(r[2] for r in results) == sorted(b"%d" % i for i in range(10))
    assert {r[0] for r in results} == {"reply"}
    assert running[1] == 3  # never more than the pool's bound
    runner.put(None)
    run_until(lambda: results[-1] == ("exited",))


def test_cancel_kills_the_greenlet_and_answers_cancelled(worker):
    results: list[tuple] = []
    worker.handler("svc")(lambda job: gevent.sleep(10))
    runner = GreenRunner(2, worker._run, results.append, RealEvent())
    job = request("slow")
    runner.put(job)
    gevent.sleep(0.05)
    job.cancelled.set()  # as the I/O thread does on CANCEL, then:
    threading.Thread(target=runner.cancel, args=(job,)).start()
    run_until(lambda: results)
    assert results[0][0] == "error" and results[0][2]["code"] == wire.E_CANCELLED
    runner.put(None)
    run_until(lambda: results[-1] == ("exited",))


def test_stopping_skips_unstarted_jobs_but_runs_requests(worker):
    results: list[tuple] = []
    worker.handler("svc")(lambda job: b"ok")
    worker.handler("q")(lambda job: None)
    stopping = RealEvent()
    stopping.set()
    runner = GreenRunner(2, worker._run, results.append, stopping)
    runner.put(Job("job", "q", {"id": "j", "lease_ms": 1000}, b"", RealEvent(), lambda item: None))
    runner.put(request("r"))
    runner.put(None)
    run_until(lambda: results and results[-1] == ("exited",))
    assert [r[0] for r in results] == ["reply", "exited"]
