# SPDX-License-Identifier: MIT
"""What three frames a message cost Python callers, against one: a raw echo measured both ways.

    .venv/bin/python bench/framing.py [--seconds 3]

A ROUTER echo process, and 2 caller processes x 16 threads, each thread a DEALER
making one call at a time (the shape of bench/run.py's 32-caller request scenario).
Run once with 1-frame messages (the raw baseline of bench/run.py) and once with
3-frame messages (a ZMSH/1 REQUEST or REPLY: command, header, body). pyzmq releases
the GIL around every frame, so with many threads per process each extra frame is a
chance to lose it. Prints req/s for both and their ratio. Numbers, not a test.
"""

from __future__ import annotations

import argparse
import threading
import time
from multiprocessing import Process, Queue

import zmq


def _echo(port: int) -> None:
    sock = zmq.Context().socket(zmq.ROUTER)
    sock.bind(f"tcp://127.0.0.1:{port}")
    while True:
        sock.send_multipart(sock.recv_multipart())


def _callers(port: int, frames_n: int, threads: int, seconds: float, out: Queue) -> None:
    ctx = zmq.Context()
    frames = [b"ZM\x01\x06", b"h" * 40, b"x" * 100] if frames_n == 3 else [b"x" * 100]
    counts = [0] * threads
    start = threading.Barrier(threads)

    def run(i: int) -> None:
        sock = ctx.socket(zmq.DEALER)
        sock.connect(f"tcp://127.0.0.1:{port}")
        sock.send_multipart(frames)  # connected and warm before the clock starts
        sock.recv_multipart()
        start.wait()
        stop = time.monotonic() + seconds
        n = 0
        while time.monotonic() < stop:
            sock.send_multipart(frames)
            sock.recv_multipart()
            n += 1
        counts[i] = n

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put(sum(counts) / seconds)


def measure(frames_n: int, seconds: float, procs: int = 2, threads: int = 16) -> float:
    with zmq.Context() as ctx:  # a free port for the echo process
        probe = ctx.socket(zmq.ROUTER)
        port = probe.bind_to_random_port("tcp://127.0.0.1")
        probe.close(linger=0)
    echo = Process(target=_echo, args=(port,), daemon=True)
    echo.start()
    time.sleep(0.3)
    out: Queue = Queue()
    callers = [Process(target=_callers, args=(port, frames_n, threads, seconds, out)) for _ in range(procs)]
    for c in callers:
        c.start()
    rate = sum(out.get(timeout=seconds + 30) for _ in callers)
    for c in callers:
        c.join()
    echo.kill()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    one = measure(1, args.seconds)
    three = measure(3, args.seconds)
    print(f"1 frame each way : {one:10,.0f} req/s")
    print(f"3 frames each way: {three:10,.0f} req/s  ({three / one:.0%} of 1 frame)")


if __name__ == "__main__":
    main()
