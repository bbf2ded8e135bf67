# SPDX-License-Identifier: MIT
"""zeromesh scenarios: a real broker subprocess, Worker and Client each in their own process.

push: one producer process calls Client.push_many(n bodies) (pipelined confirms:
`window` unconfirmed jobs at most, `batch` jobs per PUSH message); `workers`
Worker processes run a handler that returns None, so every job is acked. The
broker's queue may hold all n jobs (a confirm means queued, so the producer can
run ahead of the workers; the default max_depth of 100,000 would refuse the rest).
The rate is n / (last job handled in any worker - producer's call to push_many).
Afterwards the broker's `status` must show acked == n, or the run fails.

request: one Worker process serves "echo" (returns the body); synchronous
callers (callers.py) call Client.request("echo", body) back to back.

Both report the CPU time each process spent per message (from /proc), which
tells where the cost lies without a profiler attached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import callers
from harness import (
    SPAWN,
    BenchError,
    Broker,
    body,
    cpu_seconds,
    parent_alive,
    pid_of,
    recv_within,
    start_child,
    stop_children,
)

Attach = Callable[[str, int], None]
"""attach(role, pid): called once the processes are up, before the measured part starts (for profilers)."""

QUEUE = "bench"


def _worker_main(conn: Connection, endpoint: str, mode: str, concurrency: int, credit: int, progress: Any) -> None:
    from zeromesh import Worker

    worker = Worker(endpoint, concurrency=concurrency, credit=credit, label=f"bench-{mode}")
    stamps: list[float] = []
    clock = time.monotonic
    if mode == "push":

        @worker.handler(QUEUE)
        def handle(job: Any) -> None:
            stamps.append(clock())  # list.append is atomic under the GIL: no lock per job
    else:
        # None: the worker's own choice (it moves a handler this quick to its I/O thread), as users get it.
        @worker.handler("echo", inline=True if mode == "echo-inline" else None)
        def handle(job: Any) -> bytes:
            return job.body

    worker.start()
    if not worker.wait_ready(10):
        raise BenchError("worker not registered with the broker within 10 s")
    conn.send("ready")
    # Publish progress every few ms for the parent (count, time of the last job handled) until
    # it sets progress[2]. A plain sleep: a pipe poll would cost this process more per wake-up.
    ticks = 0
    while not progress[2]:
        time.sleep(0.01)  # the end time is the last stamp itself, so this only delays noticing it
        if stamps:
            progress[1] = stamps[-1]
            progress[0] = len(stamps)
        ticks += 1
        if ticks % 100 == 0 and not parent_alive():
            break
    worker.stop(grace=2)
    conn.send("stopped")


def _producer_main(conn: Connection, endpoint: str, n: int, window: int, batch: int) -> None:
    from zeromesh import Client

    client = Client(endpoint, green=False)
    client.ping()
    bodies = [body()] * n
    conn.send("ready")
    conn.recv()
    t0 = time.monotonic()
    ids = client.push_many(QUEUE, bodies, window=window, batch=batch, timeout=30)
    t1 = time.monotonic()
    if len(ids) != n:
        raise BenchError(f"push_many returned {len(ids)} ids for {n} bodies")
    conn.send((t0, t1))
    conn.recv()  # stay alive until the parent has read our CPU time
    client.close()


def _start_workers(broker: Broker, mode: str, count: int, concurrency: int, credit: int) -> list:
    workers = []
    for _ in range(count):
        progress = SPAWN.RawArray("d", 3)  # jobs handled, time of the last, stop flag
        proc, conn = start_child(_worker_main, broker.endpoint, mode, concurrency, credit, progress)
        workers.append((proc, conn, progress))
    for _, conn, _ in workers:
        recv_within(conn, 30, "worker ready")
    return workers


def _stop_workers(workers: list) -> None:
    for _, _, progress in workers:
        progress[2] = 1
    for proc, conn, _ in workers:
        if proc.is_alive():
            try:
                recv_within(conn, 10, "worker stop")
            except (BenchError, EOFError, OSError):
                pass
    stop_children([p for p, _, _ in workers])


def _cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    return {role: sum(cpu_seconds(pid) for pid in group) for role, group in pids.items()}


def push(
    n: int,
    workers: int = 2,
    concurrency: int = 4,
    credit: int = 1000,
    window: int = 5000,
    batch: int = 250,
    attach: Attach | None = None,
) -> dict:
    """Acknowledged jobs per second, producer -> broker -> workers -> ack."""
    # Confirms come when a job is queued, not when it is acked, so the producer may run
    # ahead of the workers: room for every job keeps queue_full out of the measurement.
    with Broker(f"[queues.{QUEUE}]\nmax_depth = {max(n, 100_000)}\n") as broker:
        pool = _start_workers(broker, "push", workers, concurrency, credit)
        producer = None
        try:
            producer, pconn = start_child(_producer_main, broker.endpoint, n, window, batch)
            recv_within(pconn, 30, "producer ready")
            pids = {"broker": [broker.pid], "producer": [pid_of(producer)], "workers": [pid_of(p) for p, _, _ in pool]}
            if attach:
                for role, group in pids.items():
                    for pid in group:
                        attach(role, pid)
            cpu0 = _cpu(pids)
            pconn.send("go")
            deadline = time.monotonic() + 60 + n / 2000
            confirm_window = None
            while sum(int(prog[0]) for _, _, prog in pool) < n:
                if time.monotonic() > deadline:
                    raise BenchError(f"workers handled {sum(int(p[0]) for _, _, p in pool)} of {n} jobs in time")
                if pconn.poll():
                    msg = pconn.recv()
                    if isinstance(msg, BaseException):
                        raise BenchError(f"producer failed: {msg!r}")
                    confirm_window = msg
                if not all(p.is_alive() for p, _, _ in pool):
                    raise BenchError("a worker process died")
                time.sleep(0.002)
            end = max(prog[1] for _, _, prog in pool)
            t0, t1 = confirm_window or recv_within(pconn, 30, "producer timing")
            cpu1 = _cpu(pids)
            pconn.send("exit")
            acked = _wait_acked(broker, n)
        finally:
            _stop_workers(pool)
            if producer is not None:
                stop_children([producer])
    elapsed = end - t0
    return {
        "rate": n / elapsed,
        "confirm_rate": n / (t1 - t0),
        "acked": acked,
        "jobs": n,
        **{f"cpu_us_{role}": (cpu1[role] - cpu0[role]) / n * 1e6 for role in cpu0},
    }


def _wait_acked(broker: Broker, n: int, timeout: float = 10.0) -> int:
    """The broker's acked count for the queue once it reaches n; BenchError if it never does."""
    deadline = time.monotonic() + timeout
    acked = 0
    while time.monotonic() < deadline:
        acked = broker.status()["queues"].get(QUEUE, {}).get("acked", 0)
        if acked >= n:
            if acked > n:
                raise BenchError(f"broker acked {acked} jobs for {n} pushed (duplicates)")
            return acked
        time.sleep(0.02)
    raise BenchError(f"broker shows {acked} of {n} jobs acked after {timeout:g}s")


def request(
    callers_n: int,
    seconds: float,
    concurrency: int = 4,
    credit: int = 64,
    attach: Attach | None = None,
    inline: bool = False,
    green: bool = False,
) -> dict:
    """Requests per second and latency of synchronous callers through the broker to one echo Worker.

    inline: the echo handler is registered with inline=True (runs in the worker's I/O thread).
    green: the callers are greenlets sharing one Client(green=True) per process (callers.py).
    """
    with Broker() as broker:
        pool = _start_workers(broker, "echo-inline" if inline else "echo", 1, concurrency, credit)
        try:
            pids = {"broker": [broker.pid], "workers": [pid_of(p) for p, _, _ in pool]}
            if attach:
                for role, group in pids.items():
                    for pid in group:
                        attach(role, pid)
            marks: list[dict[str, float]] = []
            result = callers.run_callers(
                "mesh",
                broker.endpoint,
                callers_n,
                seconds,
                probe=lambda: marks.append(_cpu(pids)),
                attach=attach,
                green=green,
            )
        finally:
            _stop_workers(pool)
    calls = result["calls"]
    if len(marks) == 2:
        for role in marks[0]:
            result[f"cpu_us_{role}"] = (marks[1][role] - marks[0][role]) / calls * 1e6
    return result
