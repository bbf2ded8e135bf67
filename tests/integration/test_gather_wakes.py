# SPDX-License-Identifier: MIT
"""gather() through a real green Client: a page's parts leave as one REQUEST message, come back
in one REPLY, and the gathering greenlet is woken once for all of them, not once per part.

A scripted broker (test_green_client_batching.py's raw ROUTER in a real thread) answers every
item of a REQUEST in one REPLY, as a worker serving all the parts does.
"""

from __future__ import annotations

import time

import greenlet
import pytest

import zeromesh
from zeromesh.nodes.gather import Part, PartFailed, gather

from ..conftest import scaled
from . import test_green_client_batching as batching

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def scripted(zctx):
    broker = batching.ScriptedBroker(zctx)
    yield broker
    broker.close()


def _switches_into(me: greenlet.greenlet, run):
    """run() and how many times the greenlet `me` was switched back into meanwhile."""
    woken = []

    def trace(event, args):
        if event in ("switch", "throw") and args[1] is me:
            woken.append(event)

    previous = greenlet.settrace(trace)
    try:
        return run(), len(woken)
    finally:
        greenlet.settrace(previous)


def test_three_parts_one_message_each_way_and_one_wake_up(scripted):
    parts = {
        "card": Part("cards", {"op": "get", "id": "2"}),
        "reco": Part("reco", {"id": "2"}, optional=True, default=[]),
        "ad": Part("ads", {"id": "2"}, optional=True, default={}),
    }
    with zeromesh.Client(scripted.endpoint, green=True) as client:
        gather(client, {"warm": Part("cards", {"op": "list"})}, time.monotonic() + scaled(5))  # connected
        got, wakes = _switches_into(greenlet.getcurrent(), lambda: gather(client, parts, time.monotonic() + scaled(5)))
    # The scripted broker echoes each body, so each part's value is its own request.
    assert got.values == {"card": {"op": "get", "id": "2"}, "reco": {"id": "2"}, "ad": {"id": "2"}}
    assert not got.degraded
    assert [len(items) for items in scripted.requests] == [1, 3]
    assert [h["service"] for h, _ in scripted.requests[1]] == ["cards", "reco", "ads"]
    assert wakes == 1


def test_a_late_required_part_fails_the_page_at_the_deadline(scripted):
    with zeromesh.Client(scripted.endpoint, green=True) as client:
        gather(client, {"warm": Part("cards")}, time.monotonic() + scaled(5))
        scripted.close()  # from now on nobody answers
        started = time.monotonic()
        with pytest.raises(PartFailed, match="late: no answer by the deadline"):
            gather(client, {"ad": Part("ads", optional=True, default={}), "card": Part("cards")}, started + 0.3)
        assert 0.25 < time.monotonic() - started < scaled(2)
