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


def _split(credit: int, count: int, offset: int) -> tuple[CreditSplit, dict[int, list[tuple[int, bool]]]]:
    told: dict[int, list[tuple[int, bool]]] = {i: [] for i in range(count)}
    split = CreditSplit(credit, count, offset=offset)
    for i in range(count):
        split.attach(i, lambda credit, lower, i=i: told[i].append((credit, lower)))
    return split, told


def test_split_rebalances_as_sessions_register_and_are_lost():
    split, told = _split(4, 3, offset=1)
    # READYs before any registration: the first takes the whole credit, the others what is left (nothing).
    assert [split.ready_credit(i) for i in range(3)] == [4, 0, 0]
    split.registered(0)
    assert told == {0: [], 1: [], 2: []}
    split.registered(1)
    split.registered(2)
    # Rotated by offset 1: order 1, 2, 0 -> 2, 1, 1. Session 0 is lowered by READY; until its
    # broker answers, it may still be sent 4, so the others wait.
    assert told == {0: [(2, True), (1, True)], 1: [], 2: []}
    assert split.sent == {0: 1, 1: 0, 2: 0} and split.counted() == 4
    split.confirmed(0, 1, held=0)
    assert split.sent == {0: 1, 1: 2, 2: 1} and told[1] == [(2, False)] and told[2] == [(1, False)]
    split.lost(1)
    assert split.sent == {0: 2, 2: 2} and told[0][-1] == (2, False) and told[2][-1] == (2, False)
    # Back again: its READY gets what is free (nothing); registered, the others are lowered.
    assert split.ready_credit(1) == 0
    split.registered(1)
    assert told[0][-1] == (1, True) and told[2][-1] == (1, True) and split.sent == {0: 1, 1: 0, 2: 1}
    split.confirmed(0, 1, held=0)
    assert told[1][-1] == (1, False)  # what session 0 freed; session 2's READY is not answered yet
    split.confirmed(2, 1, held=0)
    assert split.sent == {0: 1, 1: 2, 2: 1} and told[1][-1] == (2, False)


def test_a_joining_session_gets_only_what_is_free_and_the_rest_as_jobs_finish():
    split, told = _split(4, 3, offset=0)  # shares over 0, 1, 2: 2, 1, 1
    for i in (0, 1):
        split.ready_credit(i)
        split.registered(i)
    split.confirmed(0, 2, held=0)
    assert split.sent == {0: 2, 1: 2}
    assert split.report(0, 2) is None and split.report(1, 2) is None  # both full
    assert split.ready_credit(2) == 0
    split.registered(2)
    # Session 1 holds 2 above its share 1: not lowered below what it holds, so nothing is free.
    assert split.sent == {0: 2, 1: 2, 2: 0} and told[2] == []
    # A job of session 0 finishes: its share is 2, so its broker refills it; still nothing free.
    assert split.report(0, 1) is None and told[2] == []
    # One of session 1's: it is lowered to 1 now (READY, sent before its ACK), the slot still counted.
    assert split.report(1, 1) == (1, True)
    assert told[2] == [] and split.counted() == 4
    split.confirmed(1, 1, held=1)
    assert told[2] == [(1, False)] and split.sent == {0: 2, 1: 1, 2: 1} and split.counted() == 4


def test_a_lowered_session_that_still_got_jobs_counts_them():
    split, told = _split(4, 2, offset=0)
    for i in (0, 1):
        split.ready_credit(i)
        split.registered(i)
    split.confirmed(0, 2, held=0)
    split.report(0, 2)
    split.report(1, 2)
    split.lost(1)
    told[1].clear()
    assert split.sent == {0: 4}
    split.report(0, 4)
    assert split.ready_credit(1) == 0
    split.registered(1)
    assert split.report(0, 3) == (3, True)
    # The broker had sent one more before it read the READY: the answer finds 4 held.
    split.confirmed(0, 3, held=4)
    assert told[1] == [] and split.counted() == 4
    assert split.report(0, 2) == (2, True)
    assert told[1] == [(1, False)]  # the slot its held job left, while the READY to 2 is on its way
    split.confirmed(0, 2, held=2)
    assert told[1] == [(1, False), (2, False)] and split.counted() == 4


def test_a_confirmation_overtaken_by_a_raise_changes_nothing():
    split, told = _split(4, 2, offset=0)
    split.ready_credit(0)
    split.registered(0)
    split.ready_credit(1)
    split.registered(1)  # session 0 lowered 4 -> 2 by READY
    split.lost(1)  # and raised back to 4 by CREDIT before the READY's answer
    assert told[0] == [(2, True), (4, False)]
    split.confirmed(0, 2, held=0)
    assert split.sent == {0: 4} and split.bound == {0: 4}


def test_split_with_less_credit_than_brokers_leaves_some_at_zero():
    split = CreditSplit(1, 3, offset=0)
    for i in range(3):
        split.attach(i, lambda credit, lower: None)
        split.ready_credit(i)
        split.registered(i)
    assert sorted(split.sent.values()) == [0, 0, 1]


def test_one_broker_always_gets_the_whole_credit():
    split = CreditSplit(7, 1)
    assert split.ready_credit(0) == 7
    split.registered(0)
    assert split.sent == {0: 7}
