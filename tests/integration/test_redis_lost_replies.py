# SPDX-License-Identifier: MIT
"""Redis ran the broker's command and the answer never came back (Redis killed, or the
connection cut, right after): the jobs that command moved into the broker's in-flight list
must still run, once, without waiting for a broker restart. A relay between the broker and a
real redis-server drops the answer on cue (redis_cut.py)."""

from __future__ import annotations

import hashlib
import time

import pytest

from zeromesh import Client
from zeromesh.protocol import envelope, redis_keys as keys

from ..conftest import RedisServer, scaled, wait_until
from .conftest import run_counter, wait_each_ran
from .redis_cut import RedisCutRelay

DURABLE = "[queues.orders]\ndurable = true\n"
INFLIGHT = keys.inflight_key("orders", keys.broker_consumer("main"))


def _evalsha(script: str) -> bytes:
    """How a pipelined call of the script looks on the wire (SCRIPT EXISTS carries the sha too)."""
    return b"EVALSHA\r\n$40\r\n" + hashlib.sha1(script.encode()).hexdigest().encode()


@pytest.fixture
def relayed_redis(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    relay = RedisCutRelay(tmp_path, server.socket)
    yield server, relay
    relay.close()
    server.stop()


def _counting_worker(start_worker, endpoint):
    handle, runs = run_counter(0.001)
    start_worker(endpoint, {"orders": handle}, concurrency=4, credit=40)
    return runs


@pytest.mark.parametrize("cuts", ["fetch", "fetch-then-check"])
def test_a_fetch_whose_answer_is_lost_runs_its_jobs_once(broker_factory, start_worker, relayed_redis, cuts):
    """The second fetch's answer is lost while the broker holds the first fetch's jobs: those
    stay where they are (taking them back would run them twice), the second fetch's go back to
    the queue and run. With "fetch-then-check", the broker's look at its in-flight list after
    reconnecting is cut too, and it looks again at the next reconnect."""
    server, relay = relayed_redis
    total = 1200
    r = server.client()
    r.rpush(keys.queue_key("orders"), *[envelope.encode(f"j{i}", b"order-%d" % i) for i in range(total)])
    plan = [(_evalsha(keys.FETCH), 1)] + ([(b"LRANGE", 0)] if cuts == "fetch-then-check" else [])
    relay.arm(*plan)
    broker = broker_factory(DURABLE, env={"ZEROMESH_REDIS_URL": relay.url})
    runs = _counting_worker(start_worker, broker.endpoint)
    wait_until(lambda: relay.cuts == len(plan), scaled(10), message="the answers dropped")
    twice = wait_each_ran(runs, total, 30)
    print(f"lost fetch answer ({cuts}): {total} queued, {len(runs)} handled, {twice} ran twice")
    assert twice == 0
    wait_until(lambda: r.llen(INFLIGHT) == 0, scaled(5), message="the in-flight list emptied by the acks")
    assert "taken back from our in-flight list" in broker.log()
    assert "recovered" not in broker.log()  # no restart-style recovery: that would have rerun held jobs


def test_a_durable_push_whose_write_answer_is_lost_still_runs(broker_factory, start_worker, relayed_redis):
    """A durable push to a queue with a worker is written to the broker's in-flight list; the
    answer is lost, so the broker does not hold the job and its producer hears `unavailable`
    (or, resending, a confirm). Either way the job in the list runs: at least once, and what
    ran twice is counted here, not hidden."""
    server, relay = relayed_redis
    r = server.client()
    broker = broker_factory(DURABLE, env={"ZEROMESH_REDIS_URL": relay.url})
    runs = _counting_worker(start_worker, broker.endpoint)
    relay.arm((b"RPUSH\r\n$%d\r\n%s" % (len(INFLIGHT), INFLIGHT.encode()), 0))
    with Client(broker.endpoint, green=False) as client:
        try:
            answer = f"confirmed {client.push('orders', b'the-one', timeout=scaled(5))}"
        except Exception as exc:  # noqa: BLE001 - unavailable is the honest answer here
            answer = repr(exc)
    assert relay.cuts == 1
    wait_until(lambda: runs[b"the-one"] >= 1, scaled(15), message="the job run")
    wait_until(lambda: r.llen(INFLIGHT) == 0, scaled(5), message="the in-flight list emptied")
    time.sleep(0.5)
    print(f"lost write answer: producer got {answer}; the job ran {runs[b'the-one']} time(s)")
    assert r.llen(keys.queue_key("orders")) == 0
    assert "taken back from our in-flight list" in broker.log()


@pytest.mark.parametrize("held", ["in-flight", "memory"])
def test_a_dead_letter_whose_answer_is_lost_is_written_once(broker_factory, start_worker, relayed_redis, held):
    """A dead letter's write is retried after its answer is lost, and writes no second dead letter.
    A durable job moves from the in-flight list (fail.lua: only what is still held); a job held
    only in the broker's memory is pushed by dead_once.lua, which finds it already there."""
    server, relay = relayed_redis
    r = server.client()
    queue = DURABLE if held == "in-flight" else "[queues.orders]\n"
    broker = broker_factory(queue + "max_attempts = 1\n", env={"ZEROMESH_REDIS_URL": relay.url})

    def refuse(job):
        raise ValueError("never")

    start_worker(broker.endpoint, {"orders": refuse}, concurrency=1, credit=1)
    relay.arm((_evalsha(keys.FAIL if held == "in-flight" else keys.DEAD_ONCE), 0))
    with Client(broker.endpoint, green=False) as client:
        client.push("orders", b"doomed", timeout=scaled(5))
    wait_until(lambda: relay.cuts == 1, scaled(10), message="the dead letter's answer dropped")
    wait_until(lambda: r.llen(keys.dead_key("orders")) >= 1, scaled(10), message="the dead letter written")
    time.sleep(1.0)  # the retry has run by now
    dead = r.lrange(keys.dead_key("orders"), 0, -1)
    assert len(dead) == 1, dead
    assert envelope.decode(dead[0]).body == b"doomed"
    assert r.llen(INFLIGHT) == 0
    assert r.llen(keys.queue_key("orders")) == 0
