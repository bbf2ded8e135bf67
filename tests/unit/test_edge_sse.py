# SPDX-License-Identifier: MIT
"""Server-sent events: the wire format, topic selection, heartbeats and the end of a stream."""

from __future__ import annotations

import gevent
import gevent.queue
import pytest

from zeromesh import Event
from zeromesh.nodes.edge.metrics import EdgeMetrics
from zeromesh.nodes.edge.sse import EventStreams, format_event, topics

pytestmark = pytest.mark.unit


def test_format():
    assert format_event("news.x", b"one\r\ntwo", "ep", 7) == b"id: ep:7\nevent: news.x\ndata: one\ndata: two\n\n"
    assert format_event("t", b"", "e", 1) == b"id: e:1\nevent: t\ndata: \n\n"
    assert format_event("t", b"\xff", "e", 1).endswith("data: \ufffd\n\n".encode())


def test_topics_from_the_query():
    assert topics("topic=news.&topic=sport") == ["news.", "sport"]
    assert topics("") == [] and topics("other=1") == []


class FakeSub:
    def __init__(self, prefixes) -> None:
        self.prefixes = prefixes
        self.queue: gevent.queue.Queue = gevent.queue.Queue()
        self.closed = False

    def __iter__(self):
        return iter(self.queue.get, None)

    def close(self) -> None:
        self.closed = True


class FakeClient:
    def __init__(self) -> None:
        self.subs: list[FakeSub] = []

    def subscribe(self, *prefixes):
        self.subs.append(FakeSub(prefixes))
        return self.subs[-1]


def test_a_stream_delivers_beats_and_ends():
    client, metrics = FakeClient(), EdgeMetrics()
    streams = EventStreams(client, metrics, heartbeat_s=0.05)
    body = streams.stream({"QUERY_STRING": "topic=news."})
    assert next(body).startswith(b"retry: 2000\n")
    sub = client.subs[0]
    assert sub.prefixes == ("news.",)
    sub.queue.put(Event(topic="news.a", body=b"hi", headers={}, seq=3, epoch="ep", id="i"))
    assert next(body) == b"id: ep:3\nevent: news.a\ndata: hi\n\n"
    assert next(body) == b": heartbeat\n\n"  # nothing for a while
    assert metrics.registry.get_sample_value("zeromesh_edge_sse_streams") == 1
    streams.close()
    assert list(body) == []
    assert sub.closed and metrics.registry.get_sample_value("zeromesh_edge_sse_streams") == 0


def test_a_browser_that_leaves_mid_stream_releases_its_subscription():
    client = FakeClient()
    body = EventStreams(client, EdgeMetrics(), heartbeat_s=10).stream({"QUERY_STRING": ""})
    next(body)
    assert client.subs[0].prefixes == ()
    body.close()  # what the server does when a write fails
    assert client.subs[0].closed
