# SPDX-License-Identifier: MIT
"""Publish/subscribe through the Python client: slow joiners and gap detection."""

from __future__ import annotations

import pytest

from ..conftest import scaled

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def first_receipt(client, sub, topic, body, timeout=5.0):
    """Republish until the subscriber hears one (the slow-joiner loop); returns that event."""
    for _ in range(int(scaled(timeout) / 0.05)):
        client.publish(topic, body)
        event = sub.next(timeout=0.05)
        if event is not None:
            return event
    raise AssertionError(f"no event on {topic!r} within {timeout}s")


def test_events_in_order_then_a_gap_after_missing_some(client):
    with client.subscribe("t", "marker") as sub:
        first = first_receipt(client, sub, "t", "hello")
        assert (first.topic, first.body, first.gap) == ("t", b"hello", False)
        assert first.epoch and first.id
        ids = [client.publish("t", f"m{i}", headers={"n": i}) for i in range(3)]
        events = [sub.next(timeout=scaled(2)) for _ in range(3)]
        # the joiner loop may have left a few "hello"s in flight: skip them
        while events[0] is not None and events[0].body == b"hello":
            events = events[1:] + [sub.next(timeout=scaled(2))]
        assert [e.id for e in events] == ids
        assert [e.headers for e in events] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert [e.seq for e in events] == [events[0].seq, events[0].seq + 1, events[0].seq + 2]
        assert not any(e.gap for e in events)
        last = events[-1].seq

        # Step away (a SUB filters locally at once), let the topic move on, come back.
        # Events reach us in publish order, so once the marker is in, every
        # "missed" event has arrived and been dropped by the filter.
        sub.unsubscribe("t")
        for i in range(5):
            client.publish("t", f"missed {i}")
        other = client.publish("u", "not ours")
        marker = first_receipt(client, sub, "marker", "after the missed ones")
        assert marker.topic == "marker"
        sub.subscribe("t")
        back = first_receipt(client, sub, "t", "back")
        assert back.seq > last + 1 and back.gap is True
        nxt = first_receipt(client, sub, "t", "again")
        assert nxt.seq == back.seq + 1 and nxt.gap is False
        assert other  # publish returns the event id


def test_prefix_filtering_and_iteration(client):
    with client.subscribe("a.", "b.") as sub:
        first_receipt(client, sub, "a.x", "warmup")
        while sub.next(timeout=0.2) is not None:
            pass
        client.publish("c.x", "no")
        client.publish("b.y", "yes")
        event = next(iter(sub))
        assert (event.topic, event.text) == ("b.y", "yes")
