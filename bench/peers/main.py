# SPDX-License-Identifier: MIT
"""zeromesh against NATS and RabbitMQ, in one sitting on this machine (`make bench-peers`).

    .venv/bin/python bench/peers/main.py --nats-server PATH [--rabbitmq-server PATH] [--quick] [--reps N]

Starts nats-server and a private RabbitMQ node on loopback, then runs zeromesh's
scenarios (bench/run.py's, and bench/http_bench.py's edge under wrk against a bare pywsgi
hello-world) and the peers' with the repetitions outermost, so drift
during the sitting hits both sides of a ratio alike, and prints the medians and
issue 20's ratios. The servers are stopped on exit, Ctrl-C and errors included.
Numbers, not a test: the exit status is non-zero only when a run fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import sys
import time
from contextlib import ExitStack

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench/: run, harness, callers

import forward  # noqa: E402
import http_bench  # noqa: E402
import nats_client  # noqa: E402
import rabbit_client  # noqa: E402
import run  # noqa: E402
import table  # noqa: E402
from harness import BODY_SIZE, BenchError, machine_busy  # noqa: E402
from servers import NatsServer, RabbitNode  # noqa: E402

ZEROMESH = ["push-raw", "push-mesh", "req-raw-1", "req-mesh-1", "req-raw-32", "req-mesh-32", "req-mesh-32g"]
"""bench/run.py's scenarios that issue 20's ratios need (req-raw-32: for scale)."""

RABBIT_N = {True: 10_000, False: 50_000}
"""Messages per RabbitMQ run, quick and full (about 1 and 4 s at its rate here)."""

FAIRNESS = (
    "NATS's callers are asyncio tasks sharing one connection per process, the fair counterpart of greenlets\n"
    "sharing one zeromesh Client: nats-32 is 2 processes x 16 tasks, arranged as req-mesh-32g's 2 x 16 greenlets;\n"
    "nats-32-1p is 32 tasks on one connection in one process. A ratio against NATS takes the faster of the two."
)

EDGE_S = {True: 2, False: 5}
"""Seconds of each edge run under wrk, quick and full (after 1 s of unmeasured warm-up)."""
EDGE_CONNECTIONS = 50
"""wrk's keep-alive connections: issue 20's p99 target is at 50."""
EDGE = {
    "edge-bare": ("bare", "bare gevent pywsgi hello-world, 1 process (the edge's baseline)"),
    "edge-rendered": ("rendered", "edge, demo home page rendered by 2 render nodes"),
    "edge-gathered": ("gathered", "edge, card page + 3 parts gathered by 2 render nodes"),
}
"""bench/http_bench.py's scenarios: each run in fresh processes (the edge's with its own mesh)."""
EDGE_NOTE = (
    f"The edge-* rows are HTTP requests/s and latencies under wrk -t2 -c{EDGE_CONNECTIONS}, keep-alive, on loopback:\n"
    "the demo site through one edge process, two render nodes, the broker and the demo workers (bench/http_bench.py)."
)


def edge_run(scenario: str, quick: bool) -> dict:
    """One wrk run of an http_bench scenario, as this sitting's metrics (latencies in us)."""
    r = http_bench.measure(scenario, EDGE_S[quick], EDGE_CONNECTIONS)
    if r["non2xx"]:
        raise BenchError(f"{r['non2xx']} non-2xx answers from {scenario}")
    p50, p99 = (1000 * http_bench.milliseconds(r[key]) for key in ("p50", "p99"))
    return {"rate": r["rate"], "p50_us": p50, "p99_us": p99, "cpu_us": r["cpu_us"]}


def edge_scenarios() -> list[run.Scenario]:
    return [
        run.Scenario(name, "edge", title, lambda q, scenario=scenario: edge_run(scenario, q))
        for name, (scenario, title) in EDGE.items()
    ]


def peer_scenarios(nats: NatsServer, rabbit: RabbitNode) -> list[run.Scenario]:
    window = run.WINDOW_S
    return [
        run.Scenario(
            "rabbit-ack",
            "push",
            "RabbitMQ (pika), 1 producer -> 1 consumer, manual ack",
            lambda q: rabbit_client.manual_ack(rabbit.port, RABBIT_N[q]),
        ),
        run.Scenario(
            "nats-1",
            "request",
            "NATS (nats-py) request -> responder, 1 caller",
            lambda q: nats_client.request(nats.url, 1, window[q]),
        ),
        run.Scenario(
            "fwd-32",
            "request",
            "bare Python ROUTER/DEALER loop -> echo, 32 thread callers",
            lambda q: forward.request(32, window[q]),
        ),
        run.Scenario(
            "nats-32",
            "request",
            "NATS (nats-py) request, 32 asyncio tasks, 2 procs x 16 on 1 conn",
            lambda q: nats_client.request(nats.url, 32, window[q], procs=2),
        ),
        run.Scenario(
            "nats-32-1p",
            "request",
            "NATS (nats-py) request, 32 asyncio tasks on 1 connection",
            lambda q: nats_client.request(nats.url, 32, window[q], procs=1),
        ),
    ]


def sitting(nats: NatsServer, rabbit: RabbitNode) -> list[run.Scenario]:
    """Every scenario in the order a repetition runs them: each group's baselines beside it."""
    ours = {s.name: s for s in run.SCENARIOS if s.name in ZEROMESH}
    peers = {s.name: s for s in peer_scenarios(nats, rabbit) + edge_scenarios()}
    order = ["push-raw", "push-mesh", "rabbit-ack", "req-raw-1", "req-mesh-1", "nats-1"]
    order += ["req-raw-32", "fwd-32", "req-mesh-32", "req-mesh-32g", "nats-32", "nats-32-1p"]
    order += list(EDGE)
    return [ours.get(name) or peers[name] for name in order]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nats-server", required=True, metavar="PATH", help="the nats-server binary")
    parser.add_argument(
        "--rabbitmq-server",
        default="/usr/lib/rabbitmq/bin/rabbitmq-server",
        metavar="PATH",
        help="Debian's start script (default %(default)s; not the service wrapper in /usr/sbin)",
    )
    parser.add_argument("--quick", action="store_true", help="1 repetition, short runs: a smoke check")
    parser.add_argument("--reps", type=int, help="repetitions (default 3, or 1 with --quick)")
    parser.add_argument("--json", metavar="PATH", help="also write every run, the medians and the ratios here")
    parser.add_argument("--max-foreign", type=float, default=0.10, metavar="SHARE", help="as bench/run.py's")
    parser.add_argument(
        "--retries",
        type=int,
        help="disturbed runs retried at most, as bench/run.py's (default 1, or 0 with --quick: a sitting "
        "of 12 scenarios on a busy shared machine would otherwise take several times as long)",
    )
    args = parser.parse_args(argv)
    missing = [name for name in ("nats", "pika") if importlib.util.find_spec(name) is None]
    if missing:
        raise BenchError(f"{' and '.join(missing)} not installed here: `make bench-peers` installs the 'peers' extra")
    if shutil.which("wrk") is None:
        raise BenchError("wrk not found, the edge's scenarios need it: apt-get install wrk")
    reps = args.reps or (1 if args.quick else 3)
    retries = args.retries if args.retries is not None else (0 if args.quick else 1)
    # SIGTERM unwinds like Ctrl-C, so the servers and every child are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    with ExitStack() as stack:
        nats = NatsServer(args.nats_server)
        stack.callback(nats.close)
        rabbit = RabbitNode(args.rabbitmq_server)
        stack.callback(rabbit.close)
        print("starting nats-server and a RabbitMQ node on loopback ...", file=sys.stderr, flush=True)
        nats.start()
        rabbit.start()
        info = run.machine()
        info["nats-server"] = nats.version()
        info["rabbitmq-server"] = rabbit.version()
        print(
            f"zeromesh vs peers: {info['nproc']} CPU(s) {info['cpu']}, Python {info['python']}, "
            f"pyzmq {info['pyzmq']} (libzmq {info['libzmq']}), zeromesh {info['revision']}, "
            f"nats-server {info['nats-server']}, RabbitMQ {info['rabbitmq-server']}, {BODY_SIZE}-byte bodies, "
            f"{'quick, ' if args.quick else ''}{reps} repetition(s), repetitions outermost",
            flush=True,
        )
        chosen = sitting(nats, rabbit)
        runs: dict[str, list[dict]] = {s.name: [] for s in chosen}
        errors: dict[str, list[str]] = {}
        disturbed = 0
        for rep in range(1, reps + 1):
            for s in chosen:
                outcome = run.run_scenario(s, args.quick, f"{rep}/{reps}", args.max_foreign, retries)
                if isinstance(outcome, str):
                    errors.setdefault(s.name, []).append(outcome)
                else:
                    disturbed += outcome["foreign_cpu"] > args.max_foreign
                    runs[s.name].append(outcome)
    medians = run.medians_of(runs)
    outcomes = [table.evaluate(r, medians) for r in table.RATIOS]
    print()
    print(table.format_table([(s.name, s.title) for s in chosen], medians))
    print()
    print(FAIRNESS)
    print(EDGE_NOTE)
    print("\nratios (issue 20's targets; medians of this sitting):")
    print("\n".join(table.format_ratio(o) for o in outcomes))
    print(
        f"\n{sum(map(len, runs.values()))} run(s) in {time.monotonic() - began:.0f}s"
        + (f"; {sum(map(len, errors.values()))} FAILED" if errors else "")
        + f"; CPUs {100 * machine_busy():.0f}% busy at the end"
    )
    if disturbed:
        print(
            f"WARNING: {disturbed} run(s) kept although other programs used over {100 * args.max_foreign:.0f}% "
            "of the CPUs during them: absolute figures are low; compare the ratios"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "machine": info,
                    "quick": args.quick,
                    "repetitions": reps,
                    "runs": runs,
                    "medians": medians,
                    "ratios": [
                        {"what": o.ratio.what, "value": o.value, "against": o.against, "verdict": o.verdict}
                        for o in outcomes
                    ],
                    "errors": errors,
                },
                f,
                indent=2,
            )
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers and children were stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BenchError as exc:  # a server that would not start, a missing peer: no traceback needed
        print(f"bench-peers: {exc}", file=sys.stderr)
        sys.exit(2)
