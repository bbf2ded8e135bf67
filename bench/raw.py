# SPDX-License-Identifier: MIT
"""Baselines: plain pyzmq between processes, no zeromesh code at all.

push_pull: a PUSH process sends n 100-byte single-frame messages over tcp to a
PULL process, which times them from the first received to the last.

echo: a ROUTER process echoes each [routing id, body] back, in the tightest
Python loop we know (two recv and two send calls with int flags, no
recv_multipart), to synchronous DEALER callers (see callers.py).
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection

import callers
from harness import BenchError, body, parent_alive, recv_within, start_child, stop_children


def _pull_main(conn: Connection, n: int) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 10_000)  # a socket option: costs nothing per message
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    conn.send(port)
    recv = sock.recv
    recv()
    t0 = time.monotonic()
    for _ in range(n - 1):
        recv()
    t1 = time.monotonic()
    conn.send((t0, t1))
    sock.close()
    ctx.term()


def _push_main(conn: Connection, endpoint: str, n: int) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 10_000)  # every message must arrive before we exit
    sock.setsockopt(zmq.SNDTIMEO, 10_000)  # but never hang if the PULL side is gone
    sock.connect(endpoint)
    payload = body()
    send = sock.send
    for _ in range(n):
        send(payload)
    sock.close()
    ctx.term()
    conn.send("sent")


def push_pull(n: int) -> dict:
    """Messages per second from a PUSH process to a PULL process over loopback tcp."""
    pull, pull_conn = start_child(_pull_main, n)
    procs = [pull]
    try:
        port = recv_within(pull_conn, 30, "PULL port")
        push, push_conn = start_child(_push_main, f"tcp://127.0.0.1:{port}", n)
        procs.append(push)
        t0, t1 = recv_within(pull_conn, 60 + n / 50_000, "PULL timing")
        recv_within(push_conn, 10, "PUSH end")
    finally:
        stop_children(procs)
    if t1 <= t0:
        raise BenchError("PULL measured no time")
    return {"rate": (n - 1) / (t1 - t0), "messages": n}


def _echo_main(conn: Connection) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 1000)  # wake now and then to see whether the bench is still there
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    conn.send(port)
    recv, send, more = sock.recv, sock.send, int(zmq.SNDMORE)
    while True:  # until the parent terminates us
        try:
            peer = recv()
        except zmq.Again:
            if not parent_alive():
                return
            continue
        data = recv()
        send(peer, more)
        send(data)


def echo(callers_n: int, seconds: float, green: bool = False) -> dict:
    """Requests per second (and latency) of synchronous DEALER callers against a ROUTER echo.

    green: the callers are greenlets with zmq.green DEALERs (callers.py).
    """
    server, conn = start_child(_echo_main)
    try:
        port = recv_within(conn, 30, "ROUTER port")
        return callers.run_callers("raw", f"tcp://127.0.0.1:{port}", callers_n, seconds, green=green)
    finally:
        server.terminate()
        stop_children([server])
