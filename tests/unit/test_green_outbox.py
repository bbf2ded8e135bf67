# SPDX-License-Identifier: MIT
"""GreenOutbox: results and control items reach the hub from greenlets and from real threads alike."""

from __future__ import annotations

import threading

import gevent
import pytest

from zeromesh.green_io import GreenOutbox

pytestmark = pytest.mark.unit


def test_puts_from_the_hub_and_from_other_threads_reach_the_hub_batched():
    runs: list[tuple[int, list[tuple]]] = []
    hub_thread = threading.get_ident()
    outbox: GreenOutbox

    def on_items() -> None:
        runs.append((threading.get_ident(), outbox.take()))

    outbox = GreenOutbox(gevent.get_hub(), on_items)
    # From the hub's own thread: one callback for everything put before the loop turns.
    outbox.put(("ack", 1))
    outbox.put_many([("ack", 2), ("ack", 3)])
    gevent.sleep(0.01)
    assert runs == [(hub_thread, [("ack", 1), ("ack", 2), ("ack", 3)])]

    # From real threads: the async watcher wakes the hub, which takes what is there.
    def feed(start: int) -> None:
        for i in range(start, start + 100):
            outbox.put(("ack", i))

    threads = [threading.Thread(target=feed, args=(1000 * k,)) for k in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with gevent.Timeout(2):
        while sum(len(items) for _, items in runs) < 303:
            gevent.sleep(0.01)
    assert {tid for tid, _ in runs} == {hub_thread}  # on_items always ran in the hub
    got = [item for _, items in runs[1:] for item in items]
    assert sorted(got) == sorted(("ack", i) for k in range(1, 4) for i in range(1000 * k, 1000 * k + 100))

    left = outbox.close()
    assert left == []
    outbox.put(("ack", "late"))  # refused after close, never raised
    gevent.sleep(0.01)
    assert outbox.take() == []
