# SPDX-License-Identifier: MIT
"""zeromesh benchmarks against raw pyzmq baselines, measured in one run on this machine.

    .venv/bin/python bench/run.py [--quick] [--only NAME]... [--json out.json]

Prints msgs/s (and p50/p99 latency for request/reply) for each scenario, the
median of 3 repetitions (1 with --quick), and the ratio zeromesh/baseline
against the issue's targets. Each scenario runs in fresh processes; the
repetitions interleave the scenarios, so drift over the run hits both sides
of a ratio alike. Numbers, not a test: the exit status is non-zero only when
a run fails. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import mesh
import raw
from harness import BODY_SIZE, machine_busy, measure_foreign, median


@dataclass(frozen=True)
class Scenario:
    name: str
    group: str
    title: str
    run: Callable[[bool], dict]
    """run(quick) -> metrics; "rate" is always there."""


@dataclass(frozen=True)
class Target:
    name: str
    what: str
    value: str  # key in the scenario's medians, or "ratio"
    baseline: str | None
    minimum: float  # a ratio (0.15) or microseconds
    aim: float
    lower_is_better: bool = False


WINDOW_S = {True: 1.5, False: 3.0}
"""Measured window of each request/reply run (after 0.3 s of warm-up), quick and full."""
PUSH_WORKERS = 2
PUSH_CONCURRENCY = 4
PUSH_CREDIT = 1000
ECHO_CONCURRENCY = 4
ECHO_CREDIT = 64

SCENARIOS = [
    Scenario("push-raw", "push", "raw pyzmq PUSH->PULL tcp", lambda q: raw.push_pull(500_000 if q else 2_000_000)),
    Scenario(
        "push-mesh",
        "push",
        f"zeromesh push_many -> broker -> {PUSH_WORKERS} workers -> ack",
        lambda q: mesh.push(
            50_000 if q else 200_000, workers=PUSH_WORKERS, concurrency=PUSH_CONCURRENCY, credit=PUSH_CREDIT
        ),
    ),
    Scenario("req-raw-1", "request", "raw DEALER->ROUTER echo, 1 caller", lambda q: raw.echo(1, WINDOW_S[q])),
    Scenario(
        "req-mesh-1",
        "request",
        "zeromesh request -> broker -> worker, 1 caller",
        lambda q: mesh.request(1, WINDOW_S[q], concurrency=ECHO_CONCURRENCY, credit=ECHO_CREDIT),
    ),
    Scenario("req-raw-32", "request", "raw DEALER->ROUTER echo, 32 callers", lambda q: raw.echo(32, WINDOW_S[q])),
    Scenario(
        "req-mesh-32",
        "request",
        "zeromesh request -> broker -> worker, 32 callers",
        lambda q: mesh.request(32, WINDOW_S[q], concurrency=ECHO_CONCURRENCY, credit=ECHO_CREDIT),
    ),
    Scenario(
        "req-mesh-32i",
        "request",
        "  the same, echo handler inline=True (runs in the I/O thread)",
        lambda q: mesh.request(32, WINDOW_S[q], concurrency=ECHO_CONCURRENCY, credit=ECHO_CREDIT, inline=True),
    ),
    Scenario(
        "req-raw-32g",
        "request",
        "raw zmq.green DEALER->ROUTER echo, 32 greenlets",
        lambda q: raw.echo(32, WINDOW_S[q], green=True),
    ),
    Scenario(
        "req-mesh-32g",
        "request",
        "zeromesh request -> broker -> worker, 32 greenlets",
        lambda q: mesh.request(32, WINDOW_S[q], concurrency=ECHO_CONCURRENCY, credit=ECHO_CREDIT, green=True),
    ),
]

BASELINES: dict[str, tuple[str, ...]] = {
    "push-mesh": ("push-raw",),
    "req-mesh-1": ("req-raw-1",),
    "req-mesh-32": ("req-raw-32",),
    "req-mesh-32i": ("req-raw-32",),
    # Greenlet callers are held to the faster of the two raw baselines (threads, in practice),
    # not only to raw greenlets, which pay zmq.green's costs and run at about half the rate.
    "req-mesh-32g": ("req-raw-32", "req-raw-32g"),
}
"""Each zeromesh scenario's ratio is its rate over the highest rate among these baselines (all must have run)."""

TARGETS = [
    Target("push-mesh", "acked push/pull vs raw PUSH->PULL", "ratio", "push-raw", 0.15, 0.40),
    Target("req-mesh-32", "request/reply, 32 thread callers, vs raw DEALER/ROUTER", "ratio", "req-raw-32", 0.30, 0.75),
    Target(
        "req-mesh-32g",
        "request/reply, 32 greenlet callers, vs the faster raw DEALER/ROUTER",
        "ratio",
        "req-raw-32",
        0.30,
        0.75,
    ),
    Target(
        "req-mesh-1", "p99 request latency at light load (1 caller)", "p99_us", None, 2000, 500, lower_is_better=True
    ),
]


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    import msgpack
    import zmq

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "revision": revision(),
        "python": platform.python_version(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "msgpack": ".".join(map(str, msgpack.version)),
        "kernel": platform.release(),
    }


def revision() -> str:
    """The commit measured, with -dirty when the working tree differs (the package is installed editable)."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=os.path.dirname(os.path.abspath(__file__)),
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


BUSY = 0.10
"""--wait-quiet waits until other programs use at most this share of the CPUs."""
FOREIGN_NOTE = 0.03
"""Progress lines mention other programs' CPU share above this."""


def wait_quiet(limit: float) -> float:
    """Wait up to `limit` seconds for the CPUs to be at most BUSY busy; returns the last reading."""
    deadline = time.monotonic() + limit
    busy = machine_busy()
    while busy > BUSY and time.monotonic() < deadline:
        print(f"waiting for a quiet machine: CPUs {100 * busy:.0f}% busy", file=sys.stderr, flush=True)
        time.sleep(5)
        busy = machine_busy(1.0)
    return busy


def select(only: list[str] | None) -> list[Scenario]:
    if not only:
        return SCENARIOS
    names = {n for arg in only for n in arg.split(",")}
    known = {s.name for s in SCENARIOS} | {s.group for s in SCENARIOS}
    unknown = names - known
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(sorted(known))}")
    return [s for s in SCENARIOS if s.name in names or s.group in names]


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def fmt_us(x: float | None) -> str:
    return "" if x is None else f"{x:,.0f}"


def run_scenario(s: Scenario, quick: bool, label: str, max_foreign: float, retries: int) -> dict | str:
    """One repetition of a scenario, run again (up to `retries` times) while other programs took
    more than `max_foreign` of the CPUs; its metrics with "foreign_cpu" added (the last attempt's,
    disturbed or not), or the error as a string. Progress goes to stderr."""
    for attempt in range(retries + 1):
        t0 = time.monotonic()
        try:
            result, foreign = measure_foreign(partial(s.run, quick))
        except Exception as exc:
            print(f"  [{label}] {s.name:12} FAILED: {exc}", file=sys.stderr, flush=True)
            traceback.print_exc(file=sys.stderr)
            return f"{type(exc).__name__}: {exc}"
        result["foreign_cpu"] = foreign
        lat = f"  p50 {result['p50_us']:,.0f} us  p99 {result['p99_us']:,.0f} us" if "p50_us" in result else ""
        note = f", others used {100 * foreign:.0f}% CPU" if foreign > FOREIGN_NOTE else ""
        retry = foreign > max_foreign and attempt < retries
        print(
            f"  [{label}] {s.name:12} {fmt_rate(result['rate']):>10} /s{lat}"
            f"  ({time.monotonic() - t0:.1f}s{note}){'  disturbed: again' if retry else ''}",
            file=sys.stderr,
            flush=True,
        )
        if not retry:
            break
    return result


def medians_of(runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Per scenario, the median of each numeric metric over its runs (scenarios with no run left out)."""
    return {
        name: {key: median([r[key] for r in rs]) for key in rs[0] if isinstance(rs[0][key], (int, float))}
        for name, rs in runs.items()
        if rs
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 repetition, smaller counts (about 12 s; a full run takes about a minute)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="a scenario or group (push, request); repeatable or comma-separated",
    )
    parser.add_argument("--reps", type=int, help="repetitions (default 3, or 1 with --quick)")
    parser.add_argument("--json", metavar="PATH", help="also write every run and the medians here")
    parser.add_argument(
        "--max-foreign",
        type=float,
        default=0.10,
        metavar="SHARE",
        help="a run during which other programs used more than this share of the CPUs "
        "is disturbed and run again (default %(default)s)",
    )
    parser.add_argument("--retries", type=int, default=3, help="disturbed runs retried at most (default %(default)s)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for other programs to leave the CPUs idle",
    )
    args = parser.parse_args(argv)
    chosen = select(args.only)
    reps = args.reps or (1 if args.quick else 3)
    # SIGTERM unwinds like Ctrl-C, so every broker and child process is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    busy_before = wait_quiet(args.wait_quiet)
    began = time.monotonic()
    info = machine()
    print(
        f"zeromesh bench: {info['nproc']} CPU(s) {info['cpu']}, Python {info['python']}, "
        f"pyzmq {info['pyzmq']} (libzmq {info['libzmq']}), zeromesh {info['revision']}, {BODY_SIZE}-byte bodies, "
        f"{'quick, ' if args.quick else ''}{reps} repetition(s)",
        flush=True,
    )

    runs: dict[str, list[dict]] = {s.name: [] for s in chosen}
    errors: dict[str, list[str]] = {}
    disturbed = 0
    for rep in range(1, reps + 1):
        for s in chosen:
            outcome = run_scenario(s, args.quick, f"{rep}/{reps}", args.max_foreign, args.retries)
            if isinstance(outcome, str):
                errors.setdefault(s.name, []).append(outcome)
            else:
                disturbed += outcome["foreign_cpu"] > args.max_foreign
                runs[s.name].append(outcome)

    medians = medians_of(runs)
    ratios = {
        name: medians[name]["rate"] / max(medians[b]["rate"] for b in bases)
        for name, bases in BASELINES.items()
        if name in medians and all(b in medians for b in bases)
    }

    print()
    print(f"{'scenario':12} {'what':52} {'msgs/s':>10} {'p50 us':>7} {'p99 us':>7} {'ratio':>7}")
    for s in chosen:
        m = medians.get(s.name)
        if m is None:
            print(f"{s.name:12} {s.title:52} {'FAILED':>10}")
            continue
        ratio = f"{100 * ratios[s.name]:6.1f}%" if s.name in ratios else ""
        print(
            f"{s.name:12} {s.title:52} {fmt_rate(m['rate']):>10} {fmt_us(m.get('p50_us')):>7} "
            f"{fmt_us(m.get('p99_us')):>7} {ratio:>7}"
        )

    cpu_lines = []
    for name, m in medians.items():
        parts = [f"{k[7:]} {v:,.1f}" for k, v in m.items() if k.startswith("cpu_us_")]
        if parts:
            cpu_lines.append(f"  {name:12} " + ", ".join(parts))
    if cpu_lines:
        print("\nCPU time per message, microseconds, per process group (from /proc):")
        print("\n".join(cpu_lines))

    verdicts = []
    print("\ntargets (issue 2):")
    for t in TARGETS:
        m = medians.get(t.name)
        if m is None or (t.value == "ratio" and t.name not in ratios):
            print(f"  {t.what}: not measured in this run")
            continue
        got = ratios[t.name] if t.value == "ratio" else m[t.value]
        if t.lower_is_better:
            met, aim = got < t.minimum, got < t.aim
            shown = f"{got:,.0f} us (need < {t.minimum:,.0f}, aim < {t.aim:,.0f})"
        else:
            met, aim = got >= t.minimum, got >= t.aim
            shown = f"{100 * got:.1f}% (need >= {100 * t.minimum:.0f}%, aim {100 * t.aim:.0f}%)"
        verdict = "aim met" if aim else "met" if met else "NOT met"
        verdicts.append(
            {"target": t.what, "scenario": t.name, "value": got, "minimum": t.minimum, "aim": t.aim, "verdict": verdict}
        )
        print(f"  {t.what}: {shown}: {verdict}")
    elapsed = time.monotonic() - began
    busy_after = machine_busy()
    print(
        f"\n{sum(map(len, runs.values()))} run(s) in {elapsed:.0f}s"
        + (f"; {sum(map(len, errors.values()))} FAILED" if errors else "")
        + f"; CPUs {100 * busy_before:.0f}% busy before, {100 * busy_after:.0f}% after"
    )
    if disturbed:
        print(
            f"WARNING: {disturbed} run(s) kept although other programs used over {100 * args.max_foreign:.0f}% "
            "of the CPUs during them: these numbers are low; rerun on a quiet machine (--wait-quiet 300)"
        )

    if args.json:
        doc = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
            "machine": info,
            "quick": args.quick,
            "repetitions": reps,
            "body_bytes": BODY_SIZE,
            "cpu_busy_before": busy_before,
            "cpu_busy_after": busy_after,
            "disturbed_runs_kept": disturbed,
            "runs": runs,
            "medians": medians,
            "ratios": ratios,
            "targets": verdicts,
            "errors": errors,
            "elapsed_s": elapsed,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
