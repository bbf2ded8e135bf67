# SPDX-License-Identifier: MIT
"""Push routes over real HTTP: the 202's JSON, a 504 whose job may still run, and the Idempotency-Key
that lets a client retry such a push without queueing the job twice."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from zeromesh import Client

from ..conftest import scaled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROUTES = """
[[route]]
name = "send"
path = "/send"
method = "POST"
queue = "send"
timeout_s = 0.5
"""


class HeldJobs:
    """A handler that records each job it gets and holds it (in flight at the broker) until released."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.release = threading.Event()

    def __call__(self, job) -> None:
        self.ids.append(job.id)
        self.release.wait(scaled(20))


def test_202_is_json_with_the_job_id(broker, start_worker, edge_factory):
    held = HeldJobs()
    held.release.set()
    start_worker(broker.endpoint, {"send": held})
    edge = edge_factory(ROUTES)
    r = edge.request("POST", "/send", body=b"card")
    assert r.status == 202 and r.headers["content-type"] == "application/json"
    job_id = json.loads(r.body)["id"]
    wait_until(lambda: held.ids == [job_id], 5, message="the job at the worker")


def test_a_retry_after_504_with_the_same_key_makes_one_job(broker, start_worker, edge_factory):
    held = HeldJobs()
    start_worker(broker.endpoint, {"send": held})
    edge = edge_factory(ROUTES)
    key = {"Idempotency-Key": "4f1c2a9e-card-to-ann"}
    broker.signal(signal.SIGSTOP)  # the broker stalls: the push is sent but not confirmed in time
    try:
        first = edge.request("POST", "/send", body=b"card", headers=key)
    finally:
        broker.signal(signal.SIGCONT)
    assert first.status == 504, first
    # The stalled push reaches the broker now, and the worker, which holds it.
    wait_until(lambda: held.ids, 10, message="the first push at the worker")
    retry = edge.request("POST", "/send", body=b"card", headers=key)
    assert retry.status == 202, retry
    assert json.loads(retry.body)["id"] == held.ids[0] == "idem:4f1c2a9e-card-to-ann"
    held.release.set()
    with Client(broker.endpoint, broker.pub_endpoint, green=False) as client:
        wait_until(lambda: client.status()["queues"]["send"]["in_flight"] == 0, 10, message="the job done")
        time.sleep(0.3)  # a second job, if there were one, would have reached the idle worker by now
        queue = client.status()["queues"]["send"]
    assert held.ids == ["idem:4f1c2a9e-card-to-ann"], held.ids
    assert queue["depth"] == 0 and queue["in_flight"] == 0, queue
    assert "may still run" in first.text and "Idempotency-Key" in first.text  # what the 504 means


@pytest.mark.parametrize("bad", ["", "x" * 129, "has space", "comma,separated", "é"])
def test_a_bad_idempotency_key_is_400_and_queues_nothing(broker, edge_factory, bad):
    edge = edge_factory(ROUTES)
    headers = {"Idempotency-Key": bad.encode("utf-8").decode("latin-1")}
    r = edge.request("POST", "/send", body=b"card", headers=headers)
    assert r.status == 400, r
    assert "Idempotency-Key must be 1 to 128 characters" in r.text
    with Client(broker.endpoint, broker.pub_endpoint, green=False) as client:
        assert "send" not in client.status()["queues"] or client.status()["queues"]["send"]["depth"] == 0
