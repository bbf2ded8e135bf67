# SPDX-License-Identifier: MIT
"""What CURVE costs: push and request/reply with CURVE on, as a ratio to off, in one run.

    .venv/bin/python bench/curve.py [--quick] [--reps N]

The scenarios are run.py's (mesh.push and mesh.request, the same sizes); each repetition
runs every scenario with CURVE off, then on, so drift over the run hits both sides of a
ratio alike. With CURVE on, the broker gets a key pair and a clients directory holding one
key with every role, and every client and worker process finds its keys in
ZEROMESH_CURVE_SERVER / ZEROMESH_CURVE_SECRET (inherited from this process). Everything
runs on loopback. Prints the medians and the on/off ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import mesh
from harness import Broker, median

from zeromesh.protocol.curve_certs import write_key_pair

WINDOW_S = {True: 1.5, False: 3.0}

SCENARIOS: list[tuple[str, str, Callable[[bool], dict]]] = [
    (
        "push",
        "push_many -> broker -> 2 workers -> ack (jobs/s)",
        lambda q: mesh.push(50_000 if q else 200_000, workers=2, concurrency=4, credit=1000),
    ),
    (
        "req-1",
        "request -> broker -> worker, 1 caller (req/s)",
        lambda q: mesh.request(1, WINDOW_S[q], concurrency=4, credit=64),
    ),
    (
        "req-32",
        "request -> broker -> worker, 32 callers (req/s)",
        lambda q: mesh.request(32, WINDOW_S[q], concurrency=4, credit=64),
    ),
]


@contextmanager
def curve_on(root: Path) -> Iterator[None]:
    """Bench brokers with CURVE, and every process of the run with a key holding every role."""
    public, secret = write_key_pair(root / "broker", "broker", {})
    clients = root / "clients"
    client_public, client_secret = write_key_pair(
        root / "secrets", "bench", {"roles": "producer worker subscriber admin"}
    )
    clients.mkdir()
    client_public.rename(clients / client_public.name)
    saved = dict(os.environ)
    Broker.extra_args = ["--curve-secret", str(secret), "--curve-clients", str(clients)]
    os.environ["ZEROMESH_CURVE_SERVER"] = str(public)
    os.environ["ZEROMESH_CURVE_SECRET"] = str(client_secret)
    try:
        yield
    finally:
        Broker.extra_args = []
        os.environ.clear()
        os.environ.update(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs, 1 repetition")
    parser.add_argument("--reps", type=int, help="repetitions (default 3, or 1 with --quick)")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    os.environ.pop("ZEROMESH_CURVE_SERVER", None)
    os.environ.pop("ZEROMESH_CURVE_SECRET", None)
    runs: dict[tuple[str, bool], list[dict]] = {}
    for rep in range(reps):
        for name, _title, run in SCENARIOS:
            for secured in (False, True):
                if secured:
                    with tempfile.TemporaryDirectory(prefix="zeromesh-bench-keys-") as root, curve_on(Path(root)):
                        result = run(args.quick)
                else:
                    result = run(args.quick)
                runs.setdefault((name, secured), []).append(result)
                label = "on " if secured else "off"
                print(f"rep {rep + 1}/{reps} {name:7} curve {label} {result['rate']:>10,.0f}/s", file=sys.stderr)
    print(f"{'scenario':58} {'CURVE off':>11} {'CURVE on':>11} {'on/off':>7}  p99 off/on (us)")
    for name, title, _run in SCENARIOS:
        off = median([r["rate"] for r in runs[(name, False)]])
        on = median([r["rate"] for r in runs[(name, True)]])
        p99 = ""
        if "p99_us" in runs[(name, False)][0]:
            p99_off = median([r["p99_us"] for r in runs[(name, False)]])
            p99_on = median([r["p99_us"] for r in runs[(name, True)]])
            p99 = f"{p99_off:,.0f} / {p99_on:,.0f}"
        print(f"{title:58} {off:>11,.0f} {on:>11,.0f} {on / off:>7.2f}  {p99}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
