# SPDX-License-Identifier: MIT
"""Scheduled jobs: how fast due jobs move from their schedule to a worker, and how late they
arrive, against a bare redis-py loop over the same sorted set shape, measured in one run.

    .venv/bin/python bench/scheduled_bench.py [--jobs 10000] [--repeat 3]

baseline  redis-py: ZADD the jobs (one due time, pipelined), then a loop every 20 ms of
          ZRANGEBYSCORE -inf now LIMIT 500 + ZREM + RPUSH in one pipeline, until all moved:
          moved jobs/s from the due time, and each job's lateness when it reached the list
zeromesh  a producer schedules the jobs (PUSH_BATCH with at_ms, confirmed once in Redis); a raw
          worker (credit 1000) takes and acks them: delivered jobs/s from the due time, and each
          job's lateness when it reached the worker (two more hops than the baseline's list)
One redis-server on a unix socket, one broker. Medians of --repeat runs; ratios zeromesh /
baseline. Numbers, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import redis
import zmq
from redis_bench import BODY, start_broker, start_redis

from zeromesh.protocol import codec, wire

LEAD_S = 2.0  # jobs are due this long after scheduling starts: all are scheduled well before


def _ms() -> int:
    return int(time.time() * 1000)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def baseline(sock: str, n: int) -> tuple[float, float, float]:
    r = redis.Redis(unix_socket_path=sock)
    r.delete("bench:sched", "bench:list")
    due = _ms() + int(LEAD_S * 1000)
    for start in range(0, n, 500):
        r.zadd("bench:sched", {f"j{i}": due for i in range(start, min(n, start + 500))})
    late: list[float] = []
    while len(late) < n:
        now = _ms()
        ids = r.zrangebyscore("bench:sched", "-inf", now, start=0, num=500)
        if ids:
            pipe = r.pipeline(transaction=True)
            pipe.zrem("bench:sched", *ids)
            pipe.rpush("bench:list", *[BODY] * len(ids))
            pipe.execute()
            arrived = _ms()
            late.extend([arrived - due] * len(ids))
            continue
        time.sleep(0.02)
    span = max(late) / 1000 or 1e-3
    return n / span, _pct(late, 0.5), _pct(late, 0.99)


def zeromesh(endpoint: str, n: int) -> tuple[float, float, float]:
    ctx = zmq.Context.instance()
    producer = ctx.socket(zmq.DEALER)
    worker = ctx.socket(zmq.DEALER)
    for s in (producer, worker):
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
    try:
        queue = f"sched-{time.monotonic_ns()}"
        worker.send_multipart(codec.pack_control(wire.READY, {"id": "r", "names": [queue], "credit": 1000}))
        worker.recv_multipart()
        due = _ms() + int(LEAD_S * 1000)
        for start in range(0, n, 500):
            ids = [f"j{i}" for i in range(start, min(n, start + 500))]
            header = {"id": f"b{start}", "queue": queue, "ids": ids, "at_ms": due}
            producer.send_multipart(codec.pack_batch(wire.PUSH_BATCH, header, [BODY] * len(ids)))
        confirmed = 0
        while confirmed < n:
            env = codec.unpack(producer.recv_multipart())
            if env.command == wire.ERROR:
                raise RuntimeError(f"a scheduled push was refused: {env.header}")
            if env.command == wire.CONFIRM:
                confirmed += len(env.header["ids"])
        if _ms() >= due:
            raise RuntimeError("scheduling took longer than the lead: raise LEAD_S")
        late: list[float] = []
        while len(late) < n:
            if not worker.poll(10_000):
                raise RuntimeError(f"only {len(late)} of {n} scheduled jobs arrived")
            env = codec.unpack(worker.recv_multipart())
            ids = []
            if env.command == wire.JOB:
                ids = [h["id"] for h, _b in env.items]
            elif env.command in (wire.JOB_BATCH, wire.JOB_PACKED):
                ids = list(env.header["ids"])
            if ids:
                late.extend([_ms() - due] * len(ids))
                worker.send_multipart(codec.pack_control(wire.ACK, {"id": "a", "ids": ids}))
        span = max(late) / 1000 or 1e-3
        return n / span, _pct(late, 0.5), _pct(late, 0.99)
    finally:
        producer.close()
        worker.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zeromesh-sched-bench-") as tmp:
        redis_proc, sock = start_redis(Path(tmp))
        broker_proc, endpoint = start_broker(Path(tmp), sock, "")
        try:
            base, mesh = [], []
            for _ in range(args.repeat):  # repetitions outermost: both see the same machine state
                base.append(baseline(sock, args.jobs))
                mesh.append(zeromesh(endpoint, args.jobs))
        finally:
            broker_proc.terminate()
            broker_proc.wait(10)
            redis_proc.terminate()
            redis_proc.wait(10)
    b = [statistics.median(x[i] for x in base) for i in range(3)]
    m = [statistics.median(x[i] for x in mesh) for i in range(3)]
    print(f"{args.jobs} jobs due at one instant, medians of {args.repeat} runs")
    print(f"  baseline redis-py loop: moved {b[0]:,.0f} jobs/s; at the list p50 {b[1]:.0f} ms, p99 {b[2]:.0f} ms late")
    print(f"  zeromesh: delivered {m[0]:,.0f} jobs/s; at the worker p50 {m[1]:.0f} ms, p99 {m[2]:.0f} ms late")
    print(f"  ratio zeromesh/baseline: throughput {m[0] / b[0]:.2f}x, p50 lateness {m[1] / max(b[1], 1):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
