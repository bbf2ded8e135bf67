# SPDX-License-Identifier: MIT
"""Dead letters through the admin ops, kept in the broker's memory (no Redis) and in Redis alike:
each says when it died (dead_ms), and `purge` drops all of them or only those named."""

from __future__ import annotations

import time

import pytest

from zeromesh import Client, DeadLetter

from ..conftest import scaled, wait_until


@pytest.mark.parametrize("where", ["memory", "redis"])
def test_dead_letters_say_when_and_purge_takes_ids(where, broker_factory, start_worker):
    env = {"ZEROMESH_REDIS_URL": "none"} if where == "memory" else None
    broker = broker_factory("[queues.mail]\ndurable = true\n" if where == "redis" else None, env=env)

    def refuse(job):
        raise DeadLetter("no such address")

    start_worker(broker.endpoint, {"mail": refuse})
    with Client(broker.endpoint) as client:
        before_ms = time.time() * 1000
        ids = client.push_many("mail", [b"a", b"b", b"c"])
        wait_until(lambda: len(client.dead_letters("mail")) == 3, scaled(10), 0.05, "three dead letters")
        after_ms = time.time() * 1000
        listed = {item["id"]: item for item in client.dead_letters("mail")}
        assert set(listed) == set(ids)
        for item in listed.values():
            # memory: derived from the loop's clock, so a millisecond of rounding either way
            assert before_ms - 2 <= item["dead_ms"] <= after_ms + 2, item
        assert client.purge("mail", ids=[ids[1], "not-a-dead-letter"]) == 1
        assert sorted(item["id"] for item in client.dead_letters("mail")) == sorted([ids[0], ids[2]])
        assert client.purge("mail") == 2
        assert client.dead_letters("mail") == []
