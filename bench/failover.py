# SPDX-License-Identifier: MIT
"""Several brokers on this machine: failover time, and two brokers against one.

    .venv/bin/python bench/failover.py [--quick] [--only failover|scaling] [--tries 10] [--json out.json]

failover: three brokers (fixed loopback ports, so a killed one comes back where the clients'
list says), one echo Worker connected to all three. Each try starts a Client on the
three-endpoint list (a random first broker, as every client does), lets a thread make requests
back to back, SIGKILLs the broker the client is on (Client.current_endpoint), and times from
the kill to the end of the first request that started after it and succeeded (necessarily
through another broker). Requests that failed meanwhile are counted by error. Then the killed
broker is started again on its ports and the next try waits until the worker is registered
with all three. Tries alternate the failover_s settings (default 3 and 1 s).

scaling: small versions of bench/run.py's push-mesh and req-mesh-32, each on one broker and on
two brokers with a client per broker (workers connected to both, the same total credit), in
one run, repetitions interleaved. The ratio is two brokers / one broker. Every process shares
this machine's cores, so a second broker adds no CPU: the figures are reported as they are,
not as scaling.

Queues stay in memory (ZEROMESH_REDIS_URL=none, as in run.py). Numbers, not a test: the exit
status is non-zero only when a run fails. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import callers
import mesh
from harness import (
    SPAWN,
    BenchError,
    Broker,
    _die_with_parent,
    body,
    free_port,
    measure_foreign,
    median,
    percentile,
    recv_within,
    start_child,
    stop_children,
)
from run import fmt_rate, fmt_us, machine

FAILOVER_SETTINGS = (3.0, 1.0)
"""failover_s values compared: the reference clients' default and a shorter one."""
REQUEST_TIMEOUT_S = 10.0
"""Each request's deadline in the failover tries: longer than any failover_s measured."""
ECHO_LABEL = "bench-echo"
PUSH_LABEL = "bench-push"


class PinnedBroker(Broker):
    """A harness Broker that keeps its ports across restarts (a client's endpoint list names them)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def start(self, timeout: float = 10.0) -> PinnedBroker:
        if not self.endpoint:
            self.endpoint = f"tcp://127.0.0.1:{free_port()}"
            self.pub_endpoint = f"tcp://127.0.0.1:{free_port()}"
        cmd = [
            sys.executable,
            "-m",
            "zeromesh",
            "--log-level",
            self.log_level,
            "broker",
            "--name",
            self.name,
            "--endpoint",
            self.endpoint,
            "--pub",
            self.pub_endpoint,
        ]
        env = {**os.environ, "ZEROMESH_REDIS_URL": "none"}
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
        )
        if not self._wait_ready(timeout):
            raise BenchError(f"broker {self.name} did not start on {self.endpoint}; see {self._log.name}")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)


def wait_registered(brokers: list, label: str, count: int, timeout: float = 20.0) -> None:
    """Until every broker's status lists `count` workers labelled `label` (each serves all brokers)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = [sum(w["label"] == label for w in b.status()["workers"]) for b in brokers]
        if all(n >= count for n in seen):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"workers {label!r} per broker after {timeout:g}s: {seen}, expected {count} each")
        time.sleep(0.05)


def start_workers(endpoints: str, mode: str, count: int, concurrency: int, credit: int) -> list:
    """mesh's worker processes, each connected to every endpoint of the list."""
    pool = []
    for _ in range(count):
        progress = SPAWN.RawArray("d", 3)  # jobs handled, time of the last, stop flag
        proc, conn = start_child(mesh._worker_main, endpoints, mode, concurrency, credit, progress)
        pool.append((proc, conn, progress))
    for _, conn, _ in pool:
        recv_within(conn, 30, "worker ready")
    return pool


# -- failover --------------------------------------------------------------------------------


def failover_try(brokers: list[PinnedBroker], failover_s: float) -> dict:
    """One try: SIGKILL the client's broker while a thread makes requests; seconds to the next success."""
    from zeromesh import Client
    from zeromesh.errors import ZeromeshError

    client = Client(
        ",".join(b.endpoint for b in brokers),
        ",".join(b.pub_endpoint for b in brokers),
        green=False,
        failover_s=failover_s,
    )
    records: list[tuple[float, float, str | None]] = []  # (start, end, error class or None)
    stop = threading.Event()
    payload = body()

    def loop() -> None:
        clock = time.monotonic
        while not stop.is_set():
            t0 = clock()
            try:
                client.request("echo", payload, timeout=REQUEST_TIMEOUT_S)
                outcome = None
            except ZeromeshError as exc:
                outcome = type(exc).__name__
            records.append((t0, clock(), outcome))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: sum(r[2] is None for r in records) >= 20, 10, "20 requests before the kill")
        victim = next(b for b in brokers if b.endpoint == client.current_endpoint)
        t_kill = time.monotonic()
        victim.kill()
        _wait_for(
            lambda: any(r[0] >= t_kill and r[2] is None for r in records),
            failover_s + 20,
            "a successful request after the kill",
        )
        moved_to = client.current_endpoint
    finally:
        stop.set()
        thread.join(REQUEST_TIMEOUT_S + 5)
        client.close()
    first = min(end for start, end, outcome in records if start >= t_kill and outcome is None)
    failed = Counter(outcome for _, end, outcome in records if outcome is not None and end >= t_kill)
    return {
        "failover_s": failover_s,
        "seconds": first - t_kill,
        "killed": victim.endpoint,
        "moved_to": moved_to,
        "failed": dict(failed),
        "victim": victim,
    }


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"no {what} within {timeout:g}s")
        time.sleep(0.001)  # polls a list the request thread appends to; 1 ms is the resolution


def failover(tries: int, settings: tuple[float, ...]) -> dict[float, list[dict]]:
    """`tries` tries per failover_s setting, alternating the settings; each try's outcome."""
    # Each failover logs one WARNING by design; twenty of them would bury the figures.
    logging.getLogger("zeromesh").setLevel(logging.ERROR)
    brokers = [PinnedBroker(f"fo{i}") for i in range(3)]
    results: dict[float, list[dict]] = {s: [] for s in settings}
    pool: list = []
    try:
        for b in brokers:
            b.start()
        pool = start_workers(",".join(b.endpoint for b in brokers), "echo", 1, 4, 64)
        for i in range(tries):
            for setting in settings:
                wait_registered(brokers, ECHO_LABEL, 1)
                outcome = failover_try(brokers, setting)
                victim = outcome.pop("victim")
                failed = ", ".join(f"{n} {name}" for name, n in outcome["failed"].items()) or "none"
                print(
                    f"  [{i + 1}/{tries}] failover_s {setting:g}: {1000 * outcome['seconds']:,.0f} ms "
                    f"({victim.name} killed, moved to {outcome['moved_to']}; failed requests: {failed})",
                    file=sys.stderr,
                    flush=True,
                )
                results[setting].append(outcome)
                victim.start()  # the same ports: three brokers up again for the next try
    finally:
        mesh._stop_workers(pool)
        for b in brokers:
            b.close()
    return results


# -- two brokers against one -----------------------------------------------------------------

PUSH_WORKERS = 2
PUSH_CONCURRENCY = 4
PUSH_CREDIT = 1000
ECHO_CONCURRENCY = 4
ECHO_CREDIT = 64
CALLERS = 32


def push_two(n: int) -> dict:
    """mesh.push on two brokers: a producer per broker (n/2 jobs each), workers connected to both."""
    config = f"[queues.{mesh.QUEUE}]\nmax_depth = {max(n, 100_000)}\n"
    with Broker(config) as a, Broker(config) as b:
        pool = start_workers(f"{a.endpoint},{b.endpoint}", "push", PUSH_WORKERS, PUSH_CONCURRENCY, PUSH_CREDIT)
        producers: list = []
        try:
            wait_registered([a, b], PUSH_LABEL, PUSH_WORKERS)
            shares = [n // 2, n - n // 2]
            producers = [start_child(mesh._producer_main, x.endpoint, k, 5000, 250) for x, k in zip((a, b), shares)]
            for _, conn in producers:
                recv_within(conn, 30, "producer ready")
            for _, conn in producers:
                conn.send("go")
            deadline = time.monotonic() + 60 + n / 2000
            while sum(int(prog[0]) for _, _, prog in pool) < n:
                if time.monotonic() > deadline:
                    raise BenchError(f"workers handled {sum(int(p[0]) for _, _, p in pool)} of {n} jobs in time")
                if not all(p.is_alive() for p, _, _ in pool):
                    raise BenchError("a worker process died")
                time.sleep(0.002)
            end = max(prog[1] for _, _, prog in pool)
            start = min(recv_within(conn, 30, "producer timing")[0] for _, conn in producers)
            for _, conn in producers:
                conn.send("exit")
            acked = _acked_total([a, b], n)
        finally:
            mesh._stop_workers(pool)
            stop_children([p for p, _ in producers])
    return {"rate": n / (end - start), "acked": acked, "jobs": n}


def _acked_total(brokers: list[Broker], n: int, timeout: float = 10.0) -> int:
    """The brokers' acked counts summed, once they reach n; BenchError on duplicates or a shortfall."""
    deadline = time.monotonic() + timeout
    acked = 0
    while time.monotonic() < deadline:
        acked = sum(b.status()["queues"].get(mesh.QUEUE, {}).get("acked", 0) for b in brokers)
        if acked > n:
            raise BenchError(f"brokers acked {acked} jobs for {n} pushed (duplicates)")
        if acked == n:
            return acked
        time.sleep(0.02)
    raise BenchError(f"brokers show {acked} of {n} jobs acked after {timeout:g}s")


def request_two(seconds: float) -> dict:
    """mesh.request(32) on two brokers: one echo worker on both, 16 callers on each broker."""
    with Broker() as a, Broker() as b:
        pool = start_workers(f"{a.endpoint},{b.endpoint}", "echo", 1, ECHO_CONCURRENCY, ECHO_CREDIT)
        try:
            wait_registered([a, b], ECHO_LABEL, 1)
            return callers.run_callers("mesh", [a.endpoint, b.endpoint], CALLERS, seconds, procs=2)
        finally:
            mesh._stop_workers(pool)


def scaling_scenarios(quick: bool) -> list[tuple[str, str, Any]]:
    n = 50_000 if quick else 200_000
    window = 1.5 if quick else 3.0
    return [
        (
            "push-1",
            f"push_many -> 1 broker -> {PUSH_WORKERS} workers -> ack",
            lambda: mesh.push(n, workers=PUSH_WORKERS, concurrency=PUSH_CONCURRENCY, credit=PUSH_CREDIT),
        ),
        ("push-2", f"  2 brokers, a producer on each, {PUSH_WORKERS} workers on both", lambda: push_two(n)),
        (
            "req-1",
            f"request -> 1 broker -> worker, {CALLERS} callers",
            lambda: mesh.request(CALLERS, window, concurrency=ECHO_CONCURRENCY, credit=ECHO_CREDIT),
        ),
        ("req-2", f"  2 brokers, {CALLERS // 2} callers on each, the worker on both", lambda: request_two(window)),
    ]


def scaling(quick: bool, reps: int) -> dict[str, dict]:
    chosen = scaling_scenarios(quick)
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in chosen}
    for rep in range(1, reps + 1):
        for name, _, run in chosen:
            t0 = time.monotonic()
            result, foreign = measure_foreign(run)
            result["foreign_cpu"] = foreign
            lat = f"  p50 {result['p50_us']:,.0f} us  p99 {result['p99_us']:,.0f} us" if "p50_us" in result else ""
            note = f", others used {100 * foreign:.0f}% CPU" if foreign > 0.03 else ""
            print(
                f"  [{rep}/{reps}] {name:7} {fmt_rate(result['rate']):>10} /s{lat}"
                f"  ({time.monotonic() - t0:.1f}s{note})",
                file=sys.stderr,
                flush=True,
            )
            runs[name].append(result)
    medians = {
        name: {k: median([r[k] for r in rs]) for k in rs[0] if isinstance(rs[0][k], (int, float))}
        for name, rs in runs.items()
    }
    print(f"\n{'scenario':8} {'what':54} {'msgs/s':>10} {'p50 us':>7} {'p99 us':>7} {'ratio':>7}")
    for name, title, _ in chosen:
        m = medians[name]
        ratio = ""
        if name.endswith("-2"):
            ratio = f"{100 * m['rate'] / medians[name[:-1] + '1']['rate']:6.1f}%"
            m["ratio"] = m["rate"] / medians[name[:-1] + "1"]["rate"]
        print(
            f"{name:8} {title:54} {fmt_rate(m['rate']):>10} {fmt_us(m.get('p50_us')):>7} "
            f"{fmt_us(m.get('p99_us')):>7} {ratio:>7}"
        )
    print(
        f"(ratio: two brokers / one broker. This machine has {os.cpu_count()} cores shared by every process "
        "of a scenario, so a second broker adds work, not CPU: it cannot show scaling.)"
    )
    worst = max(r["foreign_cpu"] for rs in runs.values() for r in rs)
    if worst > 0.10:
        print(
            f"WARNING: other programs used up to {100 * worst:.0f}% of the CPUs during a run: "
            "these rates are low and their ratios noisy"
        )
    return {"runs": runs, "medians": medians}


def report_failover(results: dict[float, list[dict]]) -> dict[str, dict]:
    print(f"\n{'failover_s':>10} {'tries':>5} {'p50 ms':>7} {'p99 ms':>7} {'min ms':>7} {'max ms':>7}  failed requests")
    summary = {}
    for setting, outcomes in results.items():
        times = sorted(1000 * o["seconds"] for o in outcomes)
        failed: Counter = Counter()
        for o in outcomes:
            failed.update(o["failed"])
        summary[f"{setting:g}"] = {
            "tries": len(times),
            "p50_ms": percentile(times, 50),
            "p99_ms": percentile(times, 99),
            "min_ms": times[0],
            "max_ms": times[-1],
            "failed": dict(failed),
        }
        s = summary[f"{setting:g}"]
        shown = ", ".join(f"{n} {name}" for name, n in failed.items()) or "none"
        print(
            f"{setting:>10g} {len(times):>5} {s['p50_ms']:>7,.0f} {s['p99_ms']:>7,.0f} {s['min_ms']:>7,.0f} "
            f"{s['max_ms']:>7,.0f}  {shown}"
        )
    print(
        "(from SIGKILL of the client's broker to the end of the first request that started after it and "
        "succeeded through another; p99 of up to 100 tries is the slowest, nearest rank)"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 repetition and smaller counts for the scaling part")
    parser.add_argument("--only", choices=("failover", "scaling"), help="run one part")
    parser.add_argument("--tries", type=int, default=10, help="failover tries per setting (default %(default)s)")
    parser.add_argument(
        "--failover-s",
        type=float,
        action="append",
        metavar="S",
        help="a failover_s setting to measure (repeatable; default 3 and 1)",
    )
    parser.add_argument("--reps", type=int, help="scaling repetitions (default 3, or 1 with --quick)")
    parser.add_argument("--json", metavar="PATH", help="also write every try and run here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so every broker is stopped
    info = machine()
    reps = args.reps or (1 if args.quick else 3)
    print(
        f"zeromesh failover bench: {info['nproc']} CPU(s) {info['cpu']}, Python {info['python']}, "
        f"pyzmq {info['pyzmq']}, zeromesh {info['revision']}",
        flush=True,
    )
    doc: dict[str, Any] = {"machine": info, "command": " ".join([os.path.relpath(sys.executable), *sys.argv])}
    began = time.monotonic()
    if args.only in (None, "failover"):
        settings = tuple(args.failover_s or FAILOVER_SETTINGS)
        print(f"\nfailover: 3 brokers, {args.tries} tries per failover_s setting", file=sys.stderr, flush=True)
        tries = failover(args.tries, settings)
        doc["failover"] = {"tries": {f"{k:g}": v for k, v in tries.items()}, "summary": report_failover(tries)}
    if args.only in (None, "scaling"):
        print(f"\nscaling: 1 broker and 2 brokers, {reps} repetition(s)", file=sys.stderr, flush=True)
        doc["scaling"] = scaling(args.quick, reps)
    print(f"\ndone in {time.monotonic() - began:.0f}s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
