# SPDX-License-Identifier: MIT
"""The bare Python ROUTER/DEALER forwarding loop: what a broker that makes no decision costs.

Three processes, pyzmq only: callers (raw DEALERs, callers.py) -> a ROUTER frontend and a
DEALER backend in one Python loop -> one echo process (a DEALER that sends every
[caller id, body] straight back). The loop polls both sockets and drains each ready one
without blocking, moving whole multipart messages across: about twenty lines of Python,
with no envelope, ledger or routing table. The zeromesh broker does more per request and
is held to at least this rate.
"""

from __future__ import annotations

from multiprocessing.connection import Connection

import callers
from harness import parent_alive, recv_within, start_child, stop_children


def _forward_main(conn: Connection) -> None:
    import zmq

    ctx = zmq.Context()
    front, back = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    for sock in (front, back):
        sock.setsockopt(zmq.LINGER, 0)
    conn.send((front.bind_to_random_port("tcp://127.0.0.1"), back.bind_to_random_port("tcp://127.0.0.1")))
    poller = zmq.Poller()
    poller.register(front, zmq.POLLIN)
    poller.register(back, zmq.POLLIN)
    pairs = {front: back, back: front}
    noblock = int(zmq.NOBLOCK)
    while True:  # until the parent terminates us
        ready = poller.poll(1000)
        if not ready:
            if not parent_alive():
                return
            continue
        for sock, _ in ready:
            out = pairs[sock]
            recv, send = sock.recv_multipart, out.send_multipart
            try:
                while True:
                    send(recv(noblock))
            except zmq.Again:
                pass


def _echo_main(conn: Connection, endpoint: str) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 1000)
    sock.connect(endpoint)
    conn.send("ready")
    recv, send, more = sock.recv, sock.send, int(zmq.SNDMORE)
    while True:
        try:
            peer = recv()
        except zmq.Again:
            if not parent_alive():
                return
            continue
        data = recv()
        send(peer, more)
        send(data)


def request(n_callers: int, seconds: float) -> dict:
    """Requests per second (and latency) of raw DEALER callers through the forwarding loop to one echo."""
    loop, loop_conn = start_child(_forward_main)
    procs = [loop]
    try:
        front, back = recv_within(loop_conn, 30, "forwarding loop ports")
        echo, echo_conn = start_child(_echo_main, f"tcp://127.0.0.1:{back}")
        procs.append(echo)
        recv_within(echo_conn, 30, "echo behind the loop")
        return callers.run_callers("raw", f"tcp://127.0.0.1:{front}", n_callers, seconds)
    finally:
        for proc in procs:
            proc.terminate()
        stop_children(procs)
