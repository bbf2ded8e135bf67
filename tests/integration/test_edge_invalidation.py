# SPDX-License-Identifier: MIT
"""Invalidation across edge processes: by path and by tag over pub/sub, replay from the Redis stream after a
gap, a flush when the stream cannot cover it or the broker's epoch changed, and a paused edge catching up."""

from __future__ import annotations

import itertools
import signal
import time

import pytest

from zeromesh import Client, Reply

from ..conftest import scaled, wait_until
from .conftest import restart_on_same_ports
from .edge_helpers import TCPProxy, wait_metric_above, warm_up_invalidations

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROUTES = """
[[route]]
name = "cards"
path = "/cards/{id}"
service = "page"
cache_ttl_s = 300
"""

STREAM = "zeromesh:invalidations"
INVALIDATIONS = "zeromesh_edge_invalidations_total"


@pytest.fixture
def page_worker(broker, start_worker):
    counter = itertools.count(1)

    def page(job):
        card = job.headers["http.params"]["id"]
        return Reply(f"card {card} render {next(counter)}".encode(), {"cache.tags": [f"card:{card}", "cards"]})

    return start_worker(broker.endpoint, {"page": page}, label="pages")


@pytest.fixture
def client(broker):
    c = Client(broker.endpoint, broker.pub_endpoint, green=False)
    yield c
    c.close()


def cached(edge, *paths):
    for path in paths:
        edge.get(path)
        assert edge.get(path).cache == "HIT", path


def states(edge, *paths):
    """X-Cache of each path (a MISS re-caches it)."""
    return [edge.get(p).cache for p in paths]


def stream_bodies(redis_server) -> list[bytes]:
    return [fields[b"body"] for _, fields in redis_server.client().xrange(STREAM)]


def test_path_and_tag_invalidation_reach_two_edges(broker, page_worker, edge_factory, client):
    edges = [edge_factory(ROUTES), edge_factory(ROUTES)]
    warm_up_invalidations(client, *edges)
    for e in edges:
        cached(e, "/cards/1", "/cards/2", "/cards/3")

    before = [e.metric(INVALIDATIONS, kind="path") for e in edges]
    client.publish("zeromesh.invalidate.path", "/cards/1")
    for e, n in zip(edges, before, strict=True):
        wait_metric_above(e, INVALIDATIONS, n, kind="path")
        assert states(e, "/cards/1", "/cards/2", "/cards/3") == ["MISS", "HIT", "HIT"]

    before = [e.metric(INVALIDATIONS, kind="tag") for e in edges]
    client.publish("zeromesh.invalidate.tag", "card:2")
    for e, n in zip(edges, before, strict=True):
        wait_metric_above(e, INVALIDATIONS, n, kind="tag")
        assert states(e, "/cards/1", "/cards/2", "/cards/3") == ["HIT", "MISS", "HIT"]

    before = [e.metric(INVALIDATIONS, kind="all") for e in edges]
    client.publish("zeromesh.invalidate.all", "")
    for e, n in zip(edges, before, strict=True):
        wait_metric_above(e, INVALIDATIONS, n, kind="all")
        assert states(e, "/cards/1", "/cards/2", "/cards/3") == ["MISS", "MISS", "MISS"]


@pytest.mark.parametrize("stream_kept", [True, False], ids=["replayed", "flushed"])
def test_gap_replays_from_the_stream_or_flushes(broker, redis_server, page_worker, edge_factory, client, stream_kept):
    proxy = TCPProxy(broker.pub_port)  # the edge hears pub/sub through a link the test can cut
    try:
        edge = edge_factory(ROUTES, env={"ZEROMESH_PUB": proxy.endpoint})
        warm_up_invalidations(client, edge)
        cached(edge, "/cards/1", "/cards/2")

        proxy.cut_off()
        client.publish("zeromesh.invalidate.path", "/cards/1")  # lost on the way to the edge
        wait_until(lambda: b"/cards/1" in stream_bodies(redis_server), 5, message="the event in the stream")
        if not stream_kept:
            redis_server.client().delete(STREAM)  # as if trimmed past what the edge last saw
        assert states(edge, "/cards/1") == ["HIT"]  # the edge does not know yet
        proxy.restore()

        # The next invalidation the edge hears has a seq past the one it missed: a gap.
        kind = "replayed" if stream_kept else "flush_gap"
        deadline = time.monotonic() + scaled(10)
        while edge.metric(INVALIDATIONS, kind=kind) == 0:
            client.publish("zeromesh.invalidate.path", "/elsewhere")
            time.sleep(0.1)
            assert time.monotonic() < deadline, edge.log()
        expected = ["MISS", "HIT"] if stream_kept else ["MISS", "MISS"]
        assert states(edge, "/cards/1", "/cards/2") == expected
    finally:
        proxy.close()


def test_new_broker_epoch_flushes(broker_factory, start_worker, edge_factory):
    broker = broker_factory()
    start_worker(broker.endpoint, {"page": lambda job: Reply(b"card", {})}, label="pages")
    with Client(broker.endpoint, broker.pub_endpoint, green=False) as c:
        edge = edge_factory(ROUTES, on=broker)
        warm_up_invalidations(c, edge)
        cached(edge, "/cards/1")
    broker.kill()
    new = restart_on_same_ports(broker_factory, broker)
    with Client(new.endpoint, new.pub_endpoint, green=False) as c:
        deadline = time.monotonic() + scaled(10)
        while edge.metric(INVALIDATIONS, kind="flush_epoch") == 0:
            c.publish("zeromesh.invalidate.path", "/elsewhere")
            time.sleep(0.1)
            assert time.monotonic() < deadline, edge.log()
    assert edge.get("/cards/1").cache == "MISS"


def test_paused_edge_applies_what_was_published_meanwhile(broker, redis_server, page_worker, edge_factory, client):
    edge = edge_factory(ROUTES)
    warm_up_invalidations(client, edge)
    cached(edge, "/cards/1", "/cards/2")
    edge.signal(signal.SIGSTOP)
    try:
        client.publish("zeromesh.invalidate.tag", "card:1")
        for i in range(50):
            client.publish("zeromesh.invalidate.path", f"/other/{i}")
        wait_until(lambda: len(stream_bodies(redis_server)) >= 51, 5, message="events in the stream")
        redis_server.client().delete(STREAM)
    finally:
        edge.signal(signal.SIGCONT)
    # The broker's PUB socket queued the events for the paused subscriber: nothing was lost, no gap.
    wait_until(lambda: edge.metric(INVALIDATIONS, kind="tag") >= 1, 5, message="the queued tag event applied")
    assert states(edge, "/cards/1", "/cards/2") == ["MISS", "HIT"]
