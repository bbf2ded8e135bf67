# SPDX-License-Identifier: MIT
"""Endpoint lists, a client's position in its list, and a worker's credit split over brokers."""

from __future__ import annotations

import random

import pytest

from zeromesh.credit_split import CreditSplit, shares
from zeromesh.endpoints import BrokerRing, parse

pytestmark = pytest.mark.unit


def test_parse_lists_and_single_endpoints():
    assert parse("tcp://a:1") == ["tcp://a:1"]
    assert parse(" tcp://a:1 ,tcp://b:2,  tcp://c:3 ") == ["tcp://a:1", "tcp://b:2", "tcp://c:3"]
    assert parse(["tcp://a:1", " tcp://b:2"]) == ["tcp://a:1", "tcp://b:2"]


@pytest.mark.parametrize("value", ["tcp://a:1,,tcp://b:2", "tcp://a:1,", ",tcp://a:1", " , ", ["tcp://a:1", ""]])
def test_an_empty_item_is_an_error_naming_the_list(value):
    with pytest.raises(ValueError, match="empty endpoint in"):
        parse(value)


def test_an_empty_list_is_an_error():
    with pytest.raises(ValueError, match="empty endpoint"):
        parse([])


def test_ring_starts_at_random_and_moves_round_robin_once_per_generation():
    ring = BrokerRing(["a", "b", "c"], 3.0, rng=random.Random(1))
    start = ring.index
    assert ring.several and ring.current == ["a", "b", "c"][start]
    exhausted, old, new = ring.move(0, 3.2)
    assert not exhausted and old == ["a", "b", "c"][start] and new == ["a", "b", "c"][(start + 1) % 3]
    # A second socket of the old generation does not move the client again.
    assert ring.move(0, 3.5) == (False, new, new)
    assert ring.generation == 1 and ring.endpoint_of(0) == old and ring.endpoint_of(1) == new
    ring.move(1, 3.0)
    exhausted, _, _ = ring.move(2, 3.0)
    assert exhausted, "three endpoints given up in a row: none reachable"
    assert ring.failed == 0, "the next call tries the whole list again"
    assert not ring.move(3, 3.0)[0]


def test_a_live_connection_starts_the_count_again():
    ring = BrokerRing(["a", "b"], 1.0, rng=random.Random(0))
    ring.move(0, 1.0)
    ring.live()
    assert not ring.move(1, 1.0)[0]


def test_failover_must_be_positive():
    with pytest.raises(ValueError):
        BrokerRing(["a"], 0)


def test_shares_follow_the_rule():
    assert shares(4, [0, 1, 2]) == {0: 2, 1: 1, 2: 1}
    assert shares(2, [2, 0, 1]) == {2: 1, 0: 1, 1: 0}
    assert shares(5, [1]) == {1: 5}
    assert shares(5, []) == {}


def test_split_rebalances_as_sessions_register_and_are_lost():
    told: dict[int, list[int]] = {0: [], 1: [], 2: []}
    split = CreditSplit(4, 3, offset=1)
    for i in range(3):
        split.attach(i, told[i].append)
    # READYs before any registration: the first takes the whole credit, the others what is left (nothing).
    assert [split.ready_credit(i) for i in range(3)] == [4, 0, 0]
    split.registered(0)
    assert told == {0: [], 1: [], 2: []}
    split.registered(1)
    split.registered(2)
    # Rotated by offset 1: order 1, 2, 0 -> 2, 1, 1.
    assert split.sent == {0: 1, 1: 2, 2: 1}
    assert sum(split.sent.values()) == 4
    assert told[0][-1] == 1 and told[1][-1] == 2 and told[2][-1] == 1
    split.lost(1)
    assert split.sent == {0: 2, 2: 2} and told[0][-1] == 2 and told[2][-1] == 2
    # Back again: its READY gets at most what the others were not given (nothing), then its share.
    assert split.ready_credit(1) == 0
    split.registered(1)
    assert split.sent == {0: 1, 1: 2, 2: 1}


def test_split_with_less_credit_than_brokers_leaves_some_at_zero():
    split = CreditSplit(1, 3, offset=0)
    for i in range(3):
        split.attach(i, lambda share: None)
        split.ready_credit(i)
        split.registered(i)
    assert sorted(split.sent.values()) == [0, 0, 1]


def test_one_broker_always_gets_the_whole_credit():
    split = CreditSplit(7, 1)
    assert split.ready_credit(0) == 7
    split.registered(0)
    assert split.sent == {0: 7}
