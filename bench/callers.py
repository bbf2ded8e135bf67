# SPDX-License-Identifier: MIT
"""Synchronous callers for the request/reply scenarios, raw and through zeromesh alike.

A caller process runs `threads` threads; each thread owns one socket (a raw
DEALER, or its own DEALER inside a shared zeromesh Client, which keeps one per
thread) and makes one call at a time, back to back. So "32 callers" is 32
requests outstanding at once, never more. The parent runs the callers in
`procs` processes (32 callers = 2 processes x 16 threads by default) so that
one caller process's GIL is not the ceiling.

With green=True each caller is a greenlet instead, in a process that runs
gevent without monkey-patching: a raw caller owns a zmq.green DEALER, and the
zeromesh callers of a process share one Client(green=True), whose one DEALER
carries every greenlet's calls (the way a gevent web process uses it). Still
one call at a time per caller, back to back.

Protocol with the parent over the pipe:
    child  -> "ready"                 every thread has made one call (sockets connected, server up)
    parent -> (t_start, t_end)        time.monotonic() values; the clock is system-wide on Linux
    child  -> (completed, latencies)  calls that finished inside the window, and their durations in s
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

from harness import BenchError, body, cpu_seconds, percentile, pid_of, recv_within, start_child, stop_children

Call = Callable[[], bytes]


def _raw_call_factory(endpoint: str, green: bool) -> tuple[Callable[[], Call], Callable[[], None]]:
    """Each call on its own DEALER: a plain one, or zmq.green's for greenlets."""
    if green:
        import zmq.green as zmq
    else:
        import zmq

    ctx = zmq.Context()
    payload = body()

    def make() -> Call:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        send, recv = sock.send, sock.recv

        def call() -> bytes:
            send(payload)
            return recv()

        return call

    return make, lambda: ctx.destroy(linger=0)


def _mesh_call_factory(endpoint: str, green: bool) -> tuple[Callable[[], Call], Callable[[], None]]:
    """One Client for the process: a socket per thread, or one shared by the greenlets."""
    from zeromesh import Client

    client = Client(endpoint, green=green)
    payload = body()

    def make() -> Call:
        request = client.request
        return lambda: request("echo", payload, timeout=5.0)

    return make, client.close


FACTORIES = {"raw": _raw_call_factory, "mesh": _mesh_call_factory}


def _timed_calls(call: Call, t_start: float, t_end: float) -> tuple[int, list[float]]:
    """Call back to back until t_end; (calls wholly inside [t_start, t_end], their durations in s)."""
    clock = time.monotonic
    lat: list[float] = []
    done = 0
    now = clock()
    while now < t_end:
        t0 = now
        call()
        now = clock()
        if t0 >= t_start and now <= t_end:
            lat.append(now - t0)
            done += 1
    return done, lat


def caller_main(conn: Connection, kind: str, endpoint: str, threads: int) -> None:
    make, close = FACTORIES[kind](endpoint, False)
    expected = body()
    results: list[tuple[int, list[float]] | BaseException | None] = [None] * threads
    window: list[float] = []
    go = threading.Event()
    warmed = threading.Barrier(threads + 1)

    def run(index: int) -> None:
        try:
            call = make()  # each thread builds its own socket, in the thread that uses it
            if call() != expected:
                raise BenchError("echo returned a different body")
        except BaseException as exc:
            results[index] = exc
            warmed.abort()
            return
        warmed.wait()
        go.wait()
        try:
            results[index] = _timed_calls(call, *window)
        except BaseException as exc:
            results[index] = exc

    pool = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    try:
        warmed.wait(30)
    except threading.BrokenBarrierError:
        failed = next((r for r in results if isinstance(r, BaseException)), "no answer within 30 s")
        raise BenchError(f"warm-up call failed: {failed!r}") from None
    conn.send("ready")
    window.extend(conn.recv())
    go.set()
    for t in pool:
        t.join(window[1] - time.monotonic() + 10)
    outcomes = [r for r in results if isinstance(r, tuple)]
    if len(outcomes) != threads:
        failures = [r for r in results if isinstance(r, BaseException)]
        raise BenchError(f"a caller thread failed: {failures[0] if failures else 'hung'!r}")
    completed = sum(done for done, _ in outcomes)
    latencies = [x for _, lat in outcomes for x in lat]
    close()
    conn.send((completed, latencies))


def caller_green_main(conn: Connection, kind: str, endpoint: str, greenlets: int) -> None:
    """caller_main's protocol with `greenlets` greenlets in this process's one thread."""
    import gevent

    make, close = FACTORIES[kind](endpoint, True)
    expected = body()
    calls = [make() for _ in range(greenlets)]
    warm = [gevent.spawn(call) for call in calls]
    gevent.joinall(warm, timeout=30)
    for g in warm:
        if not g.successful():
            raise BenchError(f"warm-up call failed: {g.exception or 'no answer within 30 s'!r}")
        if g.value != expected:
            raise BenchError("echo returned a different body")
    conn.send("ready")
    t_start, t_end = conn.recv()  # blocks the hub: nothing else runs in this process meanwhile
    pool = [gevent.spawn(_timed_calls, call, t_start, t_end) for call in calls]
    gevent.joinall(pool, timeout=t_end - time.monotonic() + 10)
    failed = [g for g in pool if not g.successful()]
    if failed:
        raise BenchError(f"a caller greenlet failed: {failed[0].exception or 'hung'!r}")
    completed = sum(g.value[0] for g in pool)
    latencies = [x for g in pool for x in g.value[1]]
    close()
    conn.send((completed, latencies))


def run_callers(
    kind: str,
    endpoint: str | list[str],
    callers: int,
    seconds: float,
    warmup: float = 0.3,
    procs: int | None = None,
    probe: Callable[[], None] | None = None,
    attach: Callable[[str, int], None] | None = None,
    green: bool = False,
    child: Callable[..., None] | None = None,
) -> dict:
    """`callers` synchronous callers for `seconds` after `warmup`; req/s and latency percentiles.

    green: each caller is a greenlet (caller_green_main) instead of a thread.
    endpoint: a list gives caller process i the endpoint i % len (failover.py: a client per broker).

    probe() runs at the start and at the end of the measured window (e.g. to read CPU times);
    attach("callers", pid) once per caller process before the window (e.g. for a profiler).
    child: the caller process's main instead of caller_main/caller_green_main, called as
    child(conn, kind, endpoint, n) and speaking the same protocol (bench/peers: NATS's asyncio callers).
    """
    if procs is None:
        procs = 1 if callers < 8 else 2
    per = [callers // procs + (1 if i < callers % procs else 0) for i in range(procs)]
    main = child or (caller_green_main if green else caller_main)
    where = endpoint if isinstance(endpoint, list) else [endpoint]
    children = [start_child(main, kind, where[i % len(where)], n) for i, n in enumerate(per) if n]
    try:
        for _, conn in children:
            if recv_within(conn, 30, f"{kind} caller warm-up") != "ready":
                raise BenchError("caller protocol error")
        pids = [pid_of(proc) for proc, _ in children]
        if attach:
            for pid in pids:
                attach("callers", pid)
        t_start = time.monotonic() + warmup
        t_end = t_start + seconds
        for _, conn in children:
            conn.send((t_start, t_end))
        time.sleep(max(0.0, t_start - time.monotonic()))
        cpu0 = sum(cpu_seconds(pid) for pid in pids)
        if probe:
            probe()
        time.sleep(max(0.0, t_end - time.monotonic()))
        cpu1 = sum(cpu_seconds(pid) for pid in pids)
        if probe:
            probe()
        completed = 0
        latencies: list[float] = []
        for _, conn in children:
            done, lat = recv_within(conn, warmup + seconds + 30, f"{kind} caller results")
            completed += done
            latencies.extend(lat)
    finally:
        stop_children([p for p, _ in children])
    if not completed:
        raise BenchError(f"{kind} callers completed no call in the window")
    latencies.sort()
    return {
        "rate": completed / seconds,
        "p50_us": percentile(latencies, 50) * 1e6,
        "p99_us": percentile(latencies, 99) * 1e6,
        "calls": completed,
        "cpu_us_callers": (cpu1 - cpu0) / completed * 1e6,
    }
