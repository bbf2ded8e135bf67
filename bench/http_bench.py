# SPDX-License-Identifier: MIT
"""The HTTP edge under wrk, against a bare gevent WSGI hello-world measured in the same run.

    .venv/bin/python bench/http_bench.py [--duration 5] [--connections 50] [--only rendered,...] [--reps 3]

Scenarios (wrk -t2 -cN -dDs, keep-alive, loopback):
  bare     gevent pywsgi hello-world, one process, TCP_NODELAY (the baseline)
  cached   the demo home page from the edge's page cache (X-Cache: HIT), one edge process
  rendered the demo home page rendered for every request (route not cached) by two
           render nodes through the broker (its card grid is a fragment the node caches)
  gathered the demo card page, rendered for every request by two nodes, each gathering
           cards, reco and ads from the demo workers (ads delay 0): four broker round
           trips per page
Prints requests/s, p50/p99 latency and the ratio to the bare server, then the CPU each
process spent per request (user + system from /proc, the edge with its --workers children,
wrk from its rusage): on two cores shared by all of them, throughput is total CPU per
request, so this says where a change helped. With --reps N, N whole runs (fresh processes
each) and then each scenario's median ratio and p99 with their ranges: this machine drifts
by a third between sittings, so one run says little. Numbers, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

BARE_APP = r"""
import socket, sys
from gevent import monkey; monkey.patch_all()
from gevent import pywsgi
class Handler(pywsgi.WSGIHandler):
    def __init__(self, sock, *a, **k):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(sock, *a, **k)
def app(environ, start_response):
    body = b"Hello, world!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
pywsgi.WSGIServer(("127.0.0.1", int(sys.argv[1])), app, handler_class=Handler, log=None).serve_forever()
"""

BENCH_ROUTES = """
[[route]]
name = "home"
path = "/"
service = "render"
template = "home.html"
timeout_s = 2.0
cache_ttl_s = 300

[[route]]
name = "home-uncached"
path = "/uncached"
service = "render"
template = "home.html"
timeout_s = 2.0
cache_ttl_s = 0

[[route]]
name = "card-uncached"
path = "/cards/{id}"
service = "render"
template = "card.html"
timeout_s = 2.0
cache_ttl_s = 0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not answering")


def descendants(pid: int) -> list[int]:
    """pid and its children, recursively (Linux /proc): an edge with --workers N forks N."""
    found = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for child in f.read().split():
                found += descendants(int(child))
    except OSError:
        pass
    return found


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass  # exited meanwhile
    return total


def wrk(url: str, duration: int, connections: int, watch: dict[str, int] | None = None) -> dict:
    """One wrk run; with `watch` (name -> pid), also the CPU each process (and wrk) spent per request."""
    watch = watch or {}
    groups = {name: descendants(pid) for name, pid in watch.items()}
    before = {name: cpu_of(pids) for name, pids in groups.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url], stdout=subprocess.PIPE, text=True
    )
    try:
        out, _ = proc.communicate(timeout=duration + 30)
    finally:
        proc.kill()
    spent = {name: cpu_of(pids) - before[name] for name, pids in groups.items()}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # communicate() reaped wrk: its CPU is here
    spent["wrk"] = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rate": rate,
        "p50": lat.get("50", "?"),
        "p99": lat.get("99", "?"),
        "non2xx": int(errors.group(1)) if errors else 0,
        "cpu_us": {name: 1e6 * seconds / max(1, requests) for name, seconds in spent.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--edge-workers", type=int, default=1, help="edge processes (zeromesh edge --workers N)")
    parser.add_argument(
        "--reps",
        type=int,
        default=1,
        help="whole runs (fresh processes each); with more than one, medians and ranges at the end",
    )
    parser.add_argument(
        "--only",
        default="cached,rendered,gathered",
        help="comma-separated mesh scenarios to run (the bare baseline always runs)",
    )
    args = parser.parse_args()
    only = [name for name in args.only.split(",") if name]
    unknown = set(only) - {"cached", "rendered", "gathered"}
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    runs = []
    for _ in range(max(1, args.reps)):
        results = one_run(args, only)
        report(results, args)
        runs.append(results)
    if len(runs) > 1:
        summarize(runs)
    return 0


PATHS = {"cached": "/", "rendered": "/uncached", "gathered": "/cards/2"}
"""The edge's URL of each mesh scenario (BENCH_ROUTES)."""


def stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM, newest first, then wait (kill what outlives 15 s): reaped, so their CPU is ours."""
    for p in reversed(procs):
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


@contextmanager
def bare_server() -> Iterator[tuple[str, dict[str, int]]]:
    """The baseline hello-world: (its URL, {"server": pid})."""
    port = free_port()
    proc = subprocess.Popen([PY, "-c", BARE_APP, str(port)])
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}/", {"server": proc.pid}
    finally:
        stop([proc])


@contextmanager
def mesh_site(edge_workers: int = 1) -> Iterator[tuple[str, dict[str, int]]]:
    """Redis, a broker, the demo workers, two render nodes and an edge, answering:
    (the edge's base URL, process name -> pid for the CPU table)."""
    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix="zeromesh-http-bench-"))
    try:
        bport, pport, eport = free_port(), free_port(), free_port()
        env = dict(
            os.environ,
            ZEROMESH_BROKER=f"tcp://127.0.0.1:{bport}",
            ZEROMESH_PUB=f"tcp://127.0.0.1:{pport}",
            ZEROMESH_DATA_DIR=str(tmp / "redis"),
            ZEROMESH_LOG_LEVEL="WARNING",
        )
        procs.append(subprocess.Popen([PY, "-m", "zeromesh", "redis"], env=env, cwd=tmp))
        time.sleep(1.0)
        env["ZEROMESH_REDIS_URL"] = f"unix://{tmp / 'redis' / 'redis.sock'}"
        watch = {"redis": procs[-1].pid}
        procs.append(subprocess.Popen([PY, "-m", "zeromesh", "broker"], env=env, cwd=tmp))
        watch["broker"] = procs[-1].pid
        procs.append(subprocess.Popen([PY, "-m", "zeromesh.nodes.demo.workers", "--ads-delay", "0"], env=env, cwd=tmp))
        watch["demo workers"] = procs[-1].pid
        node = [PY, "-m", "zeromesh", "node", "render", "--templates", str(ROOT / "nodes/demo/templates")]
        node += ["--site-module", "zeromesh.nodes.demo.site"]
        for n in range(2):
            procs.append(subprocess.Popen(node, env=env, cwd=tmp))
            watch[f"node {n + 1}"] = procs[-1].pid
        (tmp / "routes.toml").write_text(BENCH_ROUTES)
        edge = [PY, "-m", "zeromesh", "edge", "--routes", str(tmp / "routes.toml")]
        edge += ["--listen", f"127.0.0.1:{eport}", "--workers", str(edge_workers)]
        procs.append(subprocess.Popen(edge, env=env, cwd=tmp))
        watch["edge"] = procs[-1].pid
        base = f"http://127.0.0.1:{eport}"
        wait_http(base + "/cards/1", timeout=30)
        wait_http(base + "/")
        yield base, watch
    finally:
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


def measure(name: str, duration: int, connections: int, edge_workers: int = 1, warmup: int = 1) -> dict:
    """One run of one scenario ("bare" or a PATHS key) in fresh processes, after `warmup`
    seconds of unmeasured load (templates compiled, fragment cache filled, connections made):
    what bench/peers/main.py runs, a repetition at a time."""
    site = bare_server() if name == "bare" else mesh_site(edge_workers)
    with site as (base, watch):
        url = base if name == "bare" else base + PATHS[name]
        if warmup > 0:
            wrk(url, warmup, connections)
        return wrk(url, duration, connections, watch)


def one_run(args: argparse.Namespace, only: list[str]) -> dict:
    """The bare baseline, then every chosen mesh scenario against one set of mesh processes."""
    results = {}
    with bare_server() as (url, watch):
        results["bare"] = wrk(url, args.duration, args.connections, watch)
    with mesh_site(args.edge_workers) as (base, watch):
        for name in only:
            results[name] = wrk(base + PATHS[name], args.duration, args.connections, watch)
    return results


def report(results: dict, args: argparse.Namespace) -> None:
    bare = results["bare"]["rate"]
    print(f"\nwrk -t2 -c{args.connections} -d{args.duration}s, loopback, {os.cpu_count()} cores")
    print(f"{'scenario':44s} {'req/s':>9s} {'p50':>9s} {'p99':>9s} {'ratio':>7s} {'non-2xx':>8s}")
    titles = {
        "bare": "bare gevent pywsgi hello-world (1 process)",
        "cached": "edge, cached demo home page (1 process)",
        "rendered": "edge, home page rendered by 2 nodes",
        "gathered": "edge, card page + 3 gathered parts, 2 nodes",
    }
    titles = {key: title for key, title in titles.items() if key in results}
    for key, title in titles.items():
        r = results[key]
        print(f"{title:44s} {r['rate']:9,.0f} {r['p50']:>9s} {r['p99']:>9s} {r['rate'] / bare:7.0%} {r['non2xx']:8d}")
    print("\nCPU per request, microseconds (user + system, from /proc; wrk from its rusage):")
    names = list(dict.fromkeys(name for r in results.values() for name in r["cpu_us"]))
    print(f"{'scenario':10s}" + "".join(f"{n:>13s}" for n in names) + f"{'total':>9s}")
    for key in titles:
        cpu = results[key]["cpu_us"]
        print(
            f"{key:10s}"
            + "".join(f"{cpu[n]:13.0f}" if n in cpu else f"{'':13s}" for n in names)
            + f"{sum(cpu.values()):9.0f}"
        )


def milliseconds(text: str) -> float:
    """wrk's latency figure ("812.00us", "39.87ms", "1.02s") in ms."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def summarize(runs: list[dict]) -> None:
    print(f"\n{len(runs)} runs: median (range)")
    print(f"{'scenario':10s} {'ratio to bare':>24s} {'p99':>28s}")
    for key in runs[0]:
        if key == "bare":
            continue
        ratios = sorted(r[key]["rate"] / r["bare"]["rate"] for r in runs)
        p99s = sorted(milliseconds(r[key]["p99"]) for r in runs)
        print(
            f"{key:10s} {statistics.median(ratios):8.0%} ({ratios[0]:.0%} to {ratios[-1]:.0%})"
            f"   {statistics.median(p99s):8.1f} ms ({p99s[0]:.1f} to {p99s[-1]:.1f})"
        )


if __name__ == "__main__":
    sys.exit(main())
