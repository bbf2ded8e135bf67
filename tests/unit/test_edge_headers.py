# SPDX-License-Identifier: MIT
"""The edge's request-header reader: what pywsgi needs, and a 400 for what is not HTTP."""

from __future__ import annotations

import io

import pytest

from zeromesh.nodes.edge.headers import MAX_HEADERS, MAX_LINE, read_headers

pytestmark = pytest.mark.unit


def read(raw: bytes):
    rfile = io.BufferedReader(io.BytesIO(raw))
    headers = read_headers(rfile)
    return headers, rfile.read()


def test_reads_up_to_the_blank_line_and_leaves_the_body():
    headers, rest = read(b"Host: example.com\r\nAccept:  */* \r\nX-Two: a\r\nx-two: b\r\n\r\nBODY")
    assert rest == b"BODY"
    assert headers.status == ""
    assert headers["host"] == "example.com" and headers.get("ACCEPT") == "*/*"
    assert headers.get_all("X-Two") == ["a", "b"]
    assert list(headers.headers) == ["Host: example.com\r\n", "Accept: */*\r\n", "X-Two: a\r\n", "x-two: b\r\n"]
    assert headers.getheader("missing", "d") == "d" and headers.typeheader is None
    del headers["x-two"]
    assert "X-Two" not in headers


def test_bare_newlines_and_empty_values():
    headers, rest = read(b"A: 1\nB:\n\nrest")
    assert (headers["a"], headers["b"], rest) == ("1", "", b"rest")


@pytest.mark.parametrize(
    "raw",
    [
        b"NoColonHere\r\n\r\n",
        b": no name\r\n\r\n",
        b"Bad Name: x\r\n\r\n",
        b"Host : x\r\n\r\n",
        b"A: 1\r\n folded\r\n\r\n",
    ],
    ids=["no-colon", "no-name", "space-in-name", "space-before-colon", "folded"],
)
def test_malformed_lines_are_refused(raw):
    with pytest.raises(ValueError):
        read(raw)


def test_limits():
    headers, _ = read(b"A: " + b"x" * MAX_LINE + b"\r\n\r\n")
    assert headers.status == "Line too long"
    many = b"".join(b"H%d: v\r\n" % i for i in range(MAX_HEADERS)) + b"\r\n"
    assert len(read(many)[0]) == MAX_HEADERS
    with pytest.raises(ValueError, match="more than"):
        read(b"X: y\r\n" + many)


def test_a_response_bigger_than_the_socket_buffer_goes_out_whole():
    # The edge's one-send() path for responses, on a real (gevent) socket pair with a small send
    # buffer: the first send takes part, _sendall (pywsgi's; here the socket's own) the rest.
    import socket

    import gevent
    import gevent.socket

    from zeromesh.nodes.edge.server import EdgeHandler

    server, browser = gevent.socket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = bytearray(i % 251 for i in range(300_000))
    received = bytearray()

    def read_slowly():
        gevent.sleep(0.1)
        while len(received) < len(data):
            chunk = browser.recv(65536)
            if not chunk:
                break
            received.extend(chunk)

    class Handler:  # the attributes _send_response uses
        socket = server
        response_length = 0
        partial: list[int] = []

        def _sendall(self, rest):
            self.partial.append(len(rest))
            server.sendall(rest)
            self.response_length += len(rest)

    handler = Handler()
    reader = gevent.spawn(read_slowly)
    EdgeHandler._send_response(handler, data)
    reader.join(10)
    server.close()
    browser.close()
    assert handler.partial and handler.partial[0] < len(data), "the first send() should have taken only part"
    assert handler.response_length == len(data)
    assert received == data
