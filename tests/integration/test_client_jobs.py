# SPDX-License-Identifier: MIT
"""The Python client's side of jobs for later and for once, and of the queue controls, against a
real broker and Redis with a real Worker."""

from __future__ import annotations

import datetime
import threading
import time

import pytest

from zeromesh import Client, errors

from ..conftest import scaled, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def arrivals(broker, start_worker):
    seen: dict[str, float] = {}
    lock = threading.Lock()

    def record(job) -> None:
        with lock:
            seen[job.id] = time.time()

    start_worker(broker.endpoint, {"cards": record}, concurrency=2)
    return seen


def test_delay_and_at_schedule_jobs_and_push_many_takes_them_too(broker, arrivals):
    with Client(broker.endpoint) as client:
        pushed = time.time()
        later_id = client.push("cards", b"in a second", delay=1.0)
        at = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=-5))) + datetime.timedelta(seconds=1.5)
        at_id = client.push("cards", b"at a time", at=at)
        many = client.push_many("cards", [b"a", b"b", b"c"], delay=1.0)
        assert {i["id"] for i in client.scheduled("cards")} == {later_id, at_id, *many}
        assert client.trace(at_id)["state"] == "scheduled"
        wait_until(lambda: len(arrivals) == 5, scaled(5), 0.05, "every scheduled job")
    assert arrivals[later_id] - pushed >= 1.0
    assert arrivals[at_id] >= at.timestamp()
    assert all(arrivals[i] - pushed >= 1.0 for i in many)


def test_bad_times_are_refused_before_anything_is_sent(broker):
    with Client(broker.endpoint) as client:
        with pytest.raises(ValueError, match="timezone-aware"):
            client.push("cards", b"x", at=datetime.datetime(2026, 12, 25, 8, 0))
        with pytest.raises(ValueError, match="not both"):
            client.push("cards", b"x", delay=1, at=datetime.datetime.now(datetime.UTC))
        with pytest.raises(ValueError, match="0 or more"):
            client.push("cards", b"x", delay=-1)
        with pytest.raises(ValueError, match="needs a unique_key"):
            client.push("cards", b"x", unique_ttl=5)
        assert client.status()["queues"].get("cards", {}).get("enqueued", 0) == 0


def test_a_unique_push_returns_the_holder_and_cancel_frees_nothing_twice(broker):
    with Client(broker.endpoint) as client:
        first = client.push("cards", b"one", unique_key="card:9", delay=30)
        again = client.push("cards", b"two", unique_key="card:9", delay=30)
        assert again == first
        assert [i["id"] for i in client.scheduled("cards")] == [first]
        client.cancel(first)
        with pytest.raises(errors.RemoteError) as refused:
            client.cancel(first)
        assert refused.value.code == "not_found"


def test_pause_resume_and_purge_queue_from_the_client(broker, arrivals):
    with Client(broker.endpoint) as client:
        client.pause("cards")
        ids = client.push_many("cards", [b"x"] * 5)
        time.sleep(scaled(0.5))
        assert not arrivals and client.status()["queues"]["cards"]["paused"] is True
        assert client.purge_queue("cards") == 5
        client.resume("cards")
        kept = client.push("cards", b"after")
        wait_until(lambda: kept in arrivals, scaled(5), 0.05, "the job pushed after resume")
        assert not set(ids) & set(arrivals)
        assert client.schedules() == []
