# SPDX-License-Identifier: MIT
"""GET /events: pub/sub events reach a browser as server-sent events, and a browser that leaves is noticed."""

from __future__ import annotations

import socket
import time

import pytest

from zeromesh import Client

from ..conftest import scaled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class EventReader:
    """A browser's side of /events over a raw socket (HTTP/1.0, so the stream is not chunked)."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode()

    def next(self, timeout: float) -> dict[str, str] | None:
        """The next event's fields (comments skipped), or None when nothing comes in time."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n\n" in self.buf:
                block, _, self.buf = self.buf.partition(b"\n\n")
                fields: dict[str, str] = {}
                for line in block.decode().split("\n"):
                    if line.startswith(":") or not line:
                        continue
                    key, _, value = line.partition(": ")
                    fields[key] = fields[key] + "\n" + value if key in fields else value
                if "event" in fields:
                    return fields
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not data:
                return None
            self.buf += data

    def close(self) -> None:
        self.sock.close()


def test_http11_stream_is_chunked_from_its_first_bytes(broker, edge_factory):
    # The edge sends a response's headers and first body bytes in one send(); an event stream's
    # first chunk must still carry its chunk-size line.
    edge = edge_factory(None)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=scaled(5)) as sock:
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"connected" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    size, _, rest = body.partition(b"\r\n")
    assert int(size, 16) == len(b"retry: 2000\n: connected\n\n") and rest.startswith(b"retry: 2000\n"), body


def test_events_stream_to_the_browser(broker, edge_factory):
    edge = edge_factory(None)
    stream = EventReader(edge.port, "/events?topic=news.")
    assert stream.head.startswith("HTTP/1.1 200")
    assert "Content-Type: text/event-stream" in stream.head
    with Client(broker.endpoint, broker.pub_endpoint, green=False) as client:
        event = None
        deadline = time.monotonic() + scaled(10)
        while event is None:  # the slow joiner: republish until the stream's subscription is in place
            client.publish("news.sports", "goal!\nsecond line")
            event = stream.next(0.2)
            assert time.monotonic() < deadline, "no event reached the stream"
        assert event["event"] == "news.sports"
        assert event["data"] == "goal!\nsecond line"
        epoch, seq = event["id"].split(":")
        assert epoch and int(seq) >= 1
        while stream.next(0.3) is not None:  # drain the republished copies
            pass
        client.publish("weather.today", "not asked for")
        client.publish("news.politics", "asked for")
        event = stream.next(scaled(5))
        assert (event["event"], event["data"]) == ("news.politics", "asked for")
    assert edge.metric("zeromesh_edge_sse_streams") == 1
    stream.close()  # the browser leaves: the stream ends at once, not at the next heartbeat
    wait_until(lambda: edge.metric("zeromesh_edge_sse_streams") == 0, 5, message="the stream closed")
