# SPDX-License-Identifier: MIT
"""Talking to a broker over raw ZeroMQ sockets in tests: no zeromesh client involved."""

from __future__ import annotations

import msgpack
import zmq

from zeromesh.protocol import codec, wire

from ..conftest import scaled


def dealer(zsocket, endpoint):
    s = zsocket(zmq.DEALER)
    s.connect(endpoint)
    return s


def recv(sock, timeout=5.0):
    assert sock.poll(scaled(timeout) * 1000), "no answer from the broker"
    return codec.unpack(sock.recv_multipart())


def admin(sock, op, **args):
    """The REPLY body of an ADMIN op; an ERROR fails the test; other messages (heartbeats) are skipped."""
    sock.send_multipart(codec.pack_control(wire.ADMIN, {"id": "adm", "op": op, "args": args}))
    while True:
        env = recv(sock)
        assert env.command != wire.ERROR, env
        if env.command == wire.REPLY:
            return msgpack.unpackb(env.items[0][1])
