# SPDX-License-Identifier: MIT
"""The Lua scripts of protocol/redis/*.lua, as Python loads them, on a real Redis (SPEC.md 16.3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from zeromesh import Client
from zeromesh.protocol import redis_keys as keys

from ..conftest import scaled, wait_until

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).resolve().parents[2] / "protocol" / "redis"
Q = "orders"


@pytest.fixture
def r(redis_server):
    redis_server.flush()
    client = redis_server.client()
    yield client
    client.close()


def test_every_script_file_is_loaded_as_it_is_written() -> None:
    files = sorted(SCRIPTS.glob("*.lua"))
    assert [f.stem for f in files] == [
        "ack_many",
        "dead_once",
        "due",
        "fail",
        "fetch",
        "recover",
        "recover_dead",
        "release_unique",
        "schedule",
        "take_back",
        "tick",
        "unique",
    ]
    for f in files:
        text = f.read_bytes().decode()
        assert getattr(keys, f.stem.upper()) == keys.script(f.stem) == text
        assert "\\" not in text, f"{f.name}: a backslash would read differently in some language's string syntax"
        # Redis Cluster routes a script by the keys in KEYS: a key built inside would escape it.
        assert keys.PREFIX not in text, f"{f.name} builds a key name itself: every key must arrive in KEYS"


def test_fetch_moves_the_oldest_and_ack_many_removes_them(r) -> None:
    queue, held = keys.queue_key(Q), keys.inflight_key(Q, "c1")
    r.rpush(queue, "a", "b", "c")
    assert r.register_script(keys.FETCH)(keys=[queue, held], args=[2]) == [b"a", b"b"]
    assert r.lrange(held, 0, -1) == [b"a", b"b"] and r.lrange(queue, 0, -1) == [b"c"]
    assert r.register_script(keys.FETCH)(keys=[queue, held], args=[5]) == [b"c"]
    assert r.register_script(keys.ACK_MANY)(keys=[held], args=["a", "c", "not-held"]) == 2
    assert r.lrange(held, 0, -1) == [b"b"]


def test_recover_puts_everything_back_at_the_head_oldest_first(r) -> None:
    queue, held = keys.queue_key(Q), keys.inflight_key(Q, "c1")
    r.rpush(held, "a", "b")
    r.rpush(queue, "c")
    assert r.register_script(keys.RECOVER)(keys=[queue, held]) == 2
    assert r.lrange(queue, 0, -1) == [b"a", b"b", b"c"] and not r.exists(held)


def test_take_back_moves_only_what_is_still_held_to_the_head_oldest_first(r) -> None:
    queue, held = keys.queue_key(Q), keys.inflight_key(Q, "c1")
    r.rpush(held, "a", "kept", "b", "b")
    r.rpush(queue, "c")
    # "gone" was acked meanwhile: skipped, not queued; one "b" of two leaves.
    assert r.register_script(keys.TAKE_BACK)(keys=[queue, held], args=["a", "gone", "b"]) == 2
    assert r.lrange(queue, 0, -1) == [b"a", b"b", b"c"]
    assert r.lrange(held, 0, -1) == [b"kept", b"b"]


def test_fail_pushes_only_what_was_still_held(r) -> None:
    queue, held = keys.queue_key(Q), keys.inflight_key(Q, "c1")
    fail = r.register_script(keys.FAIL)
    r.rpush(held, "old")
    assert fail(keys=[held, queue], args=["old", "new"]) == 1
    assert r.lrange(queue, 0, -1) == [b"new"] and not r.exists(held)
    assert fail(keys=[held, queue], args=["old", "again"]) == 0, "recovered meanwhile: not queued twice"
    assert r.lrange(queue, 0, -1) == [b"new"]


def recover_dead(r, consumer: str, cutoff: float, raw: bool = False, max_attempts: int = 0):
    script_keys, args = keys.recover_dead_call(Q, consumer, cutoff, raw, max_attempts)
    return r.register_script(keys.RECOVER_DEAD)(keys=script_keys, args=args)


def test_dead_once_pushes_a_dead_letter_only_once_among_the_newest(r) -> None:
    dead = keys.dead_key(Q)
    dead_once = r.register_script(keys.DEAD_ONCE)
    assert dead_once(keys=[dead], args=["d1", 3]) == 1
    assert dead_once(keys=[dead], args=["d1", 3]) == 0  # the retry of a write whose answer was lost
    assert dead_once(keys=[dead], args=["d2", 3]) == 1
    assert r.lrange(dead, 0, -1) == [b"d1", b"d2"]
    r.rpush(dead, "x", "y", "z")
    assert dead_once(keys=[dead], args=["d1", 3]) == 1  # beyond the newest 3: looked through no further
    assert r.lrange(dead, 0, -1) == [b"d1", b"d2", b"x", b"y", b"z", b"d1"]


def test_recover_dead_counts_an_attempt_and_dead_letters_at_the_limit(r) -> None:
    consumers, queue = keys.consumers_key(Q), keys.queue_key(Q)
    r.zadd(consumers, {"gone": 100, "alive": 10_000})
    young = '{"id":"j1","body":"x","attempt":0,"n":1.50}'
    old = '{"id":"j2","body":"y","attempt":2,"queue":"elsewhere","dead_ms":1}'
    r.rpush(keys.inflight_key(Q, "gone"), young, old)
    r.rpush(keys.inflight_key(Q, "alive"), "untouched")
    assert recover_dead(r, "gone", 5000, max_attempts=3) == [1, 1]
    back = [json.loads(e) for e in r.lrange(queue, 0, -1)]
    assert back == [{"attempt": 1, "error": "consumer gone lost: no heartbeat", "id": "j1", "body": "x", "n": 1.5}]
    assert b'"n":1.50' in r.lindex(queue, 0), "other members keep their text"
    dead = json.loads(r.lindex(keys.dead_key(Q), 0))
    assert (dead["attempt"], dead["queue"], dead["id"]) == (3, Q, "j2")
    seconds, micros = r.time()  # the server's clock, which the script reads
    assert 0 <= seconds * 1000 + micros // 1000 - dead["dead_ms"] < 5000
    assert r.lindex(keys.dead_key(Q), 0).count(b'"dead_ms"') == 1, "the old dead_ms is replaced, not kept"
    assert r.zrange(consumers, 0, -1) == [b"alive"] and not r.exists(keys.inflight_key(Q, "gone"))
    assert recover_dead(r, "gone", 5000) == [0, 0], "recovered once: a second caller finds nothing to move"
    assert r.llen(queue) == 1 and r.llen(keys.dead_key(Q)) == 1


def test_recover_dead_leaves_a_consumer_that_beat_after_it_was_read_as_dead(r) -> None:
    """The caller's ZRANGEBYSCORE saw the consumer silent; it beat before the script ran: it keeps its jobs."""
    consumers, held = keys.consumers_key(Q), keys.inflight_key(Q, "slow")
    r.zadd(consumers, {"slow": 100})
    r.rpush(held, '{"id":"j1","body":"x"}')
    assert r.zrangebyscore(consumers, "-inf", 5000) == [b"slow"]
    r.zadd(consumers, {"slow": 10_000})
    assert recover_dead(r, "slow", 5000, max_attempts=1) == [0, 0]
    assert r.lrange(held, 0, -1) == [b'{"id":"j1","body":"x"}']
    assert r.zscore(consumers, "slow") == 10_000
    assert not r.exists(keys.queue_key(Q)) and not r.exists(keys.dead_key(Q))


def test_recover_dead_refuses_a_cutoff_that_is_not_a_number(r) -> None:
    r.zadd(keys.consumers_key(Q), {"gone": 100})
    r.rpush(keys.inflight_key(Q, "gone"), "held")
    with pytest.raises(redis.ResponseError, match="cutoff must be a number"):
        recover_dead(r, "gone", "soon")  # type: ignore[arg-type]
    assert r.lrange(keys.inflight_key(Q, "gone"), 0, -1) == [b"held"] and r.zscore(keys.consumers_key(Q), "gone")


def test_recover_dead_gives_raw_elements_back_unchanged(r) -> None:
    consumers = keys.consumers_key(Q)
    r.zadd(consumers, {"gone": 100})
    r.rpush(keys.inflight_key(Q, "gone"), b"\x00raw")
    assert recover_dead(r, "gone", 5000, raw=True, max_attempts=1) == [1, 0]
    assert r.lrange(keys.queue_key(Q), 0, -1) == [b"\x00raw"]


def test_a_broker_whose_scripts_redis_forgot_loads_them_again(broker_factory, start_worker, redis_server) -> None:
    """The broker calls its scripts by sha, loaded at connect: after a SCRIPT FLUSH under the same
    connection, the calls that got NOSCRIPT are made again once it has loaded them back, and every
    job of a durable queue (fetched and acked by scripts) still runs once."""
    broker = broker_factory("[queues.orders]\ndurable = true\n")
    seen: list[bytes] = []
    start_worker(broker.endpoint, {Q: lambda job: seen.append(job.body)}, credit=10)
    with Client(broker.endpoint, green=False) as client:
        client.push(Q, b"before")
        wait_until(lambda: seen == [b"before"], scaled(10), message="the first job run")
        redis_server.client().script_flush()
        client.push_many(Q, [b"after-%d" % i for i in range(50)])
    r = redis_server.client()
    r.rpush(keys.queue_key(Q), *[json.dumps({"id": f"fed-{i}", "body": f"fed-{i}"}) for i in range(50)])
    wait_until(lambda: len(seen) == 101, scaled(15), message=lambda: f"every job run ({len(seen)} of 101)")
    assert len(set(seen)) == 101
    wait_until(lambda: r.llen(keys.inflight_key(Q, keys.broker_consumer("main"))) == 0, scaled(5), message="acked")
    assert "loaded them again" in broker.log()
