# SPDX-License-Identifier: MIT
"""Redis spill and drain through the broker against a bare redis-py loop, measured in one run.

    .venv/bin/python bench/redis_bench.py [--jobs 50000] [--repeat 3]

Baselines (redis-py with hiredis, 100 commands per pipeline, 100-byte bodies):
pipelined RPUSH and pipelined LPOP. zeromesh:
  spill     producer push_many -> broker -> Redis list (no worker: every job is
            written to Redis before its CONFIRM); jobs/s until all confirmed
  drain     a worker arrives and takes them all: broker fetches from Redis,
            dispatches, acks remove them; jobs/s until all processed
  durable   push -> worker -> ack end to end on a durable queue, and the same
            on a plain queue: the ratio is the price of durability
All against one redis-server (Debian's when installed) on a unix socket. Medians
of --repeat runs. Numbers, not a test.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

BODY = b"x" * 100
PIPE = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(tmp: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        from zeromesh.broker.embedded_redis import redis_server_executable

        binary = redis_server_executable()
    sock = tmp / "redis.sock"
    proc = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(unix_socket_path=str(sock)).ping():
                return proc, str(sock)
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def baseline(sock: str, n: int) -> tuple[float, float]:
    r = redis.Redis(unix_socket_path=sock)
    r.delete("bench:list")
    t0 = time.perf_counter()
    for start in range(0, n, PIPE):
        pipe = r.pipeline(transaction=False)
        for _ in range(min(PIPE, n - start)):
            pipe.rpush("bench:list", BODY)
        pipe.execute()
    push_rate = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    got = 0
    while got < n:
        pipe = r.pipeline(transaction=False)
        for _ in range(PIPE):
            pipe.lpop("bench:list")
        got += sum(1 for v in pipe.execute() if v is not None)
    pop_rate = n / (time.perf_counter() - t0)
    return push_rate, pop_rate


def start_broker(tmp: Path, redis_sock: str, config: str) -> tuple[subprocess.Popen, str]:
    port, pub = free_port(), free_port()
    cfg = tmp / f"broker-{port}.toml"
    cfg.write_text(config)
    env = dict(os.environ, ZEROMESH_REDIS_URL=f"unix://{redis_sock}" if redis_sock != "/nonexistent" else "none")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zeromesh",
            "--log-level",
            "WARNING",
            "broker",
            "--config",
            str(cfg),
            "--endpoint",
            f"tcp://127.0.0.1:{port}",
            "--pub",
            f"tcp://127.0.0.1:{pub}",
        ],
        env=env,
    )
    endpoint = f"tcp://127.0.0.1:{port}"
    from zeromesh import Client

    with Client(endpoint, green=False) as c:
        c.ping(timeout=10)
    return proc, endpoint


def worker_main(endpoint: str, queue: str, n: int, done, first) -> None:
    from zeromesh import Worker

    count = [0]
    worker = Worker(endpoint, concurrency=1, credit=500)

    @worker.handler(queue)
    def handle(job):
        count[0] += 1
        if count[0] == 1:
            first.value = time.perf_counter()  # the drain clock starts at the first job, not at process start
        if count[0] == n:
            done.set()

    worker.start()
    done.wait(600)
    worker.stop(grace=1)


def spill_and_drain(endpoint: str, n: int) -> tuple[float, float]:
    from zeromesh import Client

    bodies = [BODY] * n
    with Client(endpoint, green=False) as c:
        t0 = time.perf_counter()
        c.push_many("spill", bodies, window=5000)
        spill = n / (time.perf_counter() - t0)
    ctx = mp.get_context("spawn")
    done = ctx.Event()
    first = ctx.Value("d", 0.0)
    p = ctx.Process(target=worker_main, args=(endpoint, "spill", n, done, first))
    p.start()
    done.wait(600)
    drain = n / (time.perf_counter() - first.value)
    p.join(30)
    return spill, drain


def end_to_end(endpoint: str, queue: str, n: int) -> float:
    from zeromesh import Client

    ctx = mp.get_context("spawn")
    done = ctx.Event()
    first = ctx.Value("d", 0.0)  # held here: the child unpickles it after start()
    p = ctx.Process(target=worker_main, args=(endpoint, queue, n, done, first))
    p.start()
    with Client(endpoint, green=False) as c:
        deadline = time.monotonic() + 20
        while not any(queue in w["names"] for w in c.status()["workers"]):
            if time.monotonic() > deadline:
                raise RuntimeError("worker did not register")
            time.sleep(0.05)
        t0 = time.perf_counter()
        c.push_many(queue, [BODY] * n, window=5000)
        done.wait(600)
        rate = n / (time.perf_counter() - t0)
    p.join(30)
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {k: [] for k in ("rpush", "lpop", "spill", "drain", "plain", "durable")}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rproc, sock = start_redis(tmp)
        try:
            for _ in range(args.repeat):
                push, pop = baseline(sock, args.jobs)
                results["rpush"].append(push)
                results["lpop"].append(pop)
                redis.Redis(unix_socket_path=sock).flushall()
                bproc, endpoint = start_broker(tmp, sock, "[queues.durable]\ndurable = true\n")
                try:
                    spill, drain = spill_and_drain(endpoint, args.jobs)
                    results["spill"].append(spill)
                    results["drain"].append(drain)
                    results["plain"].append(end_to_end(endpoint, "plain", args.jobs))
                    results["durable"].append(end_to_end(endpoint, "durable", args.jobs))
                finally:
                    bproc.terminate()
                    bproc.wait(30)
                redis.Redis(unix_socket_path=sock).flushall()
        finally:
            rproc.terminate()
            rproc.wait(10)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"jobs per run {args.jobs}, body {len(BODY)} B, median of {args.repeat}")
    print(f"{'scenario':34s} {'jobs/s':>10s} {'ratio':>8s}")
    rows = [
        ("redis-py pipelined RPUSH (x100)", "rpush", None),
        ("redis-py pipelined LPOP (x100)", "lpop", None),
        ("zeromesh spill (push -> Redis)", "spill", "rpush"),
        ("zeromesh drain (Redis -> worker)", "drain", "lpop"),
        ("zeromesh push->worker->ack, plain", "plain", None),
        ("zeromesh push->worker->ack, durable", "durable", "plain"),
    ]
    for title, key, base in rows:
        ratio = f"{med[key] / med[base]:.0%}" if base else ""
        print(f"{title:34s} {med[key]:10,.0f} {ratio:>8s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
