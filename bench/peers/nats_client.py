# SPDX-License-Identifier: MIT
"""NATS request/reply with nats-py under asyncio, in spawned processes.

The responder is one process (as zeromesh's echo is one Worker process): a subscription
to "echo" whose callback answers every request with its body.

A caller process runs `tasks` asyncio tasks that share one connection, each making one
`request("echo", body)` at a time, back to back: the counterpart of greenlets sharing one
zeromesh Client (one connection, many calls in flight, one thread). The callers speak
callers.py's protocol, so callers.run_callers times them exactly as it times zeromesh's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

import callers
from harness import BenchError, body, parent_alive, recv_within, start_child, stop_children

SUBJECT = "echo"


def _responder_main(conn: Connection, url: str) -> None:
    import nats

    async def main() -> None:
        nc = await nats.connect(url, allow_reconnect=False)

        async def answer(msg: Any) -> None:
            await msg.respond(msg.data)

        await nc.subscribe(SUBJECT, cb=answer)
        await nc.flush()
        conn.send("ready")
        while parent_alive():  # until the parent terminates us
            await asyncio.sleep(0.5)
        await nc.close()

    asyncio.run(main())


async def _timed_calls(call: Callable[[], Awaitable[bytes]], t_start: float, t_end: float) -> tuple[int, list[float]]:
    """callers._timed_calls for a coroutine call."""
    clock = time.monotonic
    lat: list[float] = []
    done = 0
    now = clock()
    while now < t_end:
        t0 = now
        await call()
        now = clock()
        if t0 >= t_start and now <= t_end:
            lat.append(now - t0)
            done += 1
    return done, lat


def caller_main(conn: Connection, kind: str, url: str, tasks: int) -> None:
    """callers.caller_main's protocol with `tasks` asyncio tasks on one NATS connection."""
    import nats

    async def main() -> None:
        nc = await nats.connect(url, allow_reconnect=False)
        payload = body()

        async def call() -> bytes:
            return (await nc.request(SUBJECT, payload, timeout=5.0)).data

        warm = await asyncio.wait_for(asyncio.gather(*(call() for _ in range(tasks))), 30)
        if any(data != payload for data in warm):
            raise BenchError("NATS echo returned a different body")
        conn.send("ready")
        t_start, t_end = conn.recv()  # blocks the loop: nothing else runs in this process meanwhile
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(_timed_calls(call, t_start, t_end) for _ in range(tasks))),
            t_end - time.monotonic() + 10,
        )
        await nc.close()
        completed = sum(done for done, _ in outcomes)
        conn.send((completed, [x for _, lat in outcomes for x in lat]))

    asyncio.run(main())


def request(url: str, n_callers: int, seconds: float, procs: int | None = None) -> dict:
    """Requests per second and latency of `n_callers` asyncio tasks against one NATS echo responder.

    procs: caller processes (callers.run_callers' default: 2 from 8 callers on, as for zeromesh).
    """
    responder, conn = start_child(_responder_main, url)
    try:
        recv_within(conn, 30, "NATS responder")
        return callers.run_callers("nats", url, n_callers, seconds, procs=procs, child=caller_main)
    finally:
        responder.terminate()
        stop_children([responder])
