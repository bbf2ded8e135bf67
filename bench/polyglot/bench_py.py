# SPDX-License-Identifier: MIT
"""The Python side of bench/polyglot_bench.py: one role per process, JSON lines on stdout.

    bench_py.py worker  --queue Q --service S --total T --mark W [--concurrency 4] [--credit 500]
    bench_py.py push    --queue Q --n N --warm W [--size 100]
    bench_py.py request --service S [--callers 8] [--seconds 3] [--warmup 0.5] [--size 100]

bench.rb and Bench.java take the same arguments and print the same lines; times are
CLOCK_MONOTONIC seconds, the one clock every process on the machine shares.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from zeromesh import Client, Worker

clock = time.monotonic


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def worker(args: argparse.Namespace) -> None:
    w = Worker(None, concurrency=args.concurrency, credit=args.credit, label="bench-py")
    lock = threading.Lock()
    handled = [0]

    def count(job: object) -> None:
        with lock:
            handled[0] += 1
            n = handled[0]
        if n == args.mark:
            emit(event="mark", handled=n, t=clock())
        if n == args.total:
            emit(event="done", handled=n, t=clock())

    w.handler(args.queue)(count)
    w.handler(args.service)(lambda job: job.body)
    w.start()
    if not w.wait_ready(10):
        sys.exit("bench_py worker: not registered within 10 s")
    emit(event="ready")
    sys.stdin.read()  # until the parent closes our stdin
    w.stop(grace=2)


def push(args: argparse.Namespace) -> None:
    client = Client(None, green=False)
    client.ping()
    body = b"x" * args.size
    client.push_many(args.queue, [body] * args.warm, timeout=30)
    emit(event="warm-pushed")
    sys.stdin.readline()  # "go": the worker has handled the warm-up jobs
    t0 = clock()
    emit(event="start", t=t0)
    ids = client.push_many(args.queue, [body] * args.n, timeout=60)
    emit(event="confirmed", t=clock(), n=len(ids), mode="push_many (window 5000, 250 per message)")
    sys.stdin.read()  # alive until the parent has read our CPU time
    client.close()


def request(args: argparse.Namespace) -> None:
    client = Client(None, green=False)
    client.ping()
    body = b"x" * args.size
    start = clock() + args.warmup
    end = start + args.seconds
    emit(event="window", start=start, end=end)
    results: list[list[float]] = [[] for _ in range(args.callers)]

    def caller(mine: list[float]) -> None:
        while True:
            t0 = clock()
            if t0 >= end:
                return
            client.request(args.service, body, timeout=5)
            t1 = clock()
            if t0 >= start and t1 <= end:
                mine.append(t1 - t0)

    threads = [threading.Thread(target=caller, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = sorted(x for r in results for x in r)
    emit(
        event="result",
        calls=len(lat),
        window=args.seconds,
        p50_ms=lat[len(lat) // 2] * 1000 if lat else None,
        p99_ms=lat[int(len(lat) * 0.99)] * 1000 if lat else None,
    )
    sys.stdin.read()
    client.close()


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="role", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--queue", required=True)
    w.add_argument("--service", required=True)
    w.add_argument("--total", type=int, required=True)
    w.add_argument("--mark", type=int, required=True)
    w.add_argument("--concurrency", type=int, default=4)
    w.add_argument("--credit", type=int, default=500)
    u = sub.add_parser("push")
    u.add_argument("--queue", required=True)
    u.add_argument("--n", type=int, required=True)
    u.add_argument("--warm", type=int, required=True)
    u.add_argument("--size", type=int, default=100)
    u.add_argument("--threads", type=int, default=1)  # unused: push_many pipelines by itself
    r = sub.add_parser("request")
    r.add_argument("--service", required=True)
    r.add_argument("--callers", type=int, default=8)
    r.add_argument("--seconds", type=float, default=3.0)
    r.add_argument("--warmup", type=float, default=0.5)
    r.add_argument("--size", type=int, default=100)
    args = p.parse_args()
    {"worker": worker, "push": push, "request": request}[args.role](args)


if __name__ == "__main__":
    main()
