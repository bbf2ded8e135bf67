# SPDX-License-Identifier: MIT
"""Run the zeromesh scenarios with py-spy attached to every process; print where the time goes.

    .venv/bin/pip install py-spy        # a bench-time tool, not a project dependency
    .venv/bin/python bench/profile.py [--only push|request-1|request-32|request-32g] [--out DIR]

py-spy samples each process (broker, producer or callers, workers) from outside,
non-blocking. By default it records only the thread holding the GIL (py-spy --gil),
so the percentages are shares of the Python time of that process: where the
interpreter works. Time in C code that releases the GIL (libzmq inside send/recv/poll)
and in the kernel is not in these tables; `perf record -g -p PID` shows that part.
With --all-threads every thread the kernel reports as running is sampled; on a
saturated 2-core machine that includes threads that are runnable but waiting for a
CPU (a thread just woken inside poll or sleep shows up there), so use it for wall
time, not for CPU.

"self" is time in the function itself, including the C calls it makes while holding
the GIL; "total" includes everything it calls. Raw stacks stay in DIR for
flamegraph.pl or speedscope.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import mesh

SCENARIOS = {
    "push": lambda attach: mesh.push(300_000, workers=2, concurrency=4, credit=500, attach=attach),
    "request-1": lambda attach: mesh.request(1, 6.0, concurrency=4, credit=64, attach=attach),
    "request-32": lambda attach: mesh.request(32, 6.0, concurrency=4, credit=64, attach=attach),
    "request-32g": lambda attach: mesh.request(32, 6.0, concurrency=4, credit=64, attach=attach, green=True),
}


class PySpy:
    def __init__(self, exe: str, out: Path, scenario: str, rate: int, extra: list[str]) -> None:
        self.exe, self.out, self.scenario, self.rate, self.extra = exe, out, scenario, rate, extra
        self.runs: list[tuple[str, Path, subprocess.Popen]] = []

    def attach(self, role: str, pid: int) -> None:
        path = self.out / f"{self.scenario}-{role}-{pid}.txt"
        cmd = [
            self.exe,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(self.rate),
            "--format",
            "raw",
            "--function",
            "--threads",
            "--nonblocking",
            *self.extra,
            "-o",
            str(path),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.runs.append((role, path, proc))
        time.sleep(0.05)  # py-spy needs a moment to attach before the measured part begins

    def finish(self, timeout: float = 20.0) -> dict[str, list[Path]]:
        """Wait for each py-spy (it writes its file when its target exits); SIGINT stragglers."""
        deadline = time.monotonic() + timeout
        files: dict[str, list[Path]] = defaultdict(list)
        for role, path, proc in self.runs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)
                proc.wait(10)
            if path.exists():
                files[role].append(path)
        return files


def _frame_name(frame: str) -> str:
    """'recv_frames (/work/main/protocol/fastio.py:28)' -> 'fastio.py:recv_frames'."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0]
    return f"{os.path.basename(file)}:{name}" if file else name


_ROOTS = (
    "process.py:",
    "spawn.py:",
    "<frozen runpy>:",
    "<string>:",
    "__main__.py:",
    "harness.py:_child_entry",
    "cli.py:main",
    "cli.py:cmd_broker",
    "server.py:serve",
    "threading.py:Thread._bootstrap",
    "threading.py:Thread.run",
    "realthreads.py:",
)
"""Entry frames at the bottom of every stack: their "total" is ~100% and says nothing."""

_THREAD_ENTRIES = (
    "worker.py:Worker._io_main",
    "worker.py:Worker._handler_main",
    "mesh.py:_worker_main",
    "mesh.py:_producer_main",
    "callers.py:caller_main.<locals>.run",
    "callers.py:caller_main",
    "server.py:BrokerServer.run",
)


def summarize(paths: list[Path], top: int) -> str:
    self_c: Counter[str] = Counter()
    total_c: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    samples = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count_s = line.rpartition(" ")
            if not stack:
                continue
            count = int(count_s)
            frames = [_frame_name(f) for f in stack.split(";")[1:]]  # [0] is the thread
            samples += count
            # Name a thread by its entry function, innermost match wins (handler threads live inside RealThread).
            entry = next((f for f in reversed(frames) if f in _THREAD_ENTRIES), "other")
            threads[entry] += count
            if frames:
                self_c[frames[-1]] += count
                for name in set(frames):
                    if not name.startswith(_ROOTS):
                        total_c[name] += count
    if not samples:
        return "    (no samples)\n"
    pct = lambda c: 100 * c / samples  # noqa: E731
    out = [
        f"    {samples} samples in {len(paths)} process(es); by thread: "
        + ", ".join(f"{name.split(':')[-1]} {pct(c):.0f}%" for name, c in threads.most_common())
        + "\n"
    ]
    out.append(f"    {'self%':>5}  {'function':52} {'total%':>6}  function\n")
    by_self = self_c.most_common(top)
    by_total = total_c.most_common(top)
    for i in range(top):
        left = f"{pct(by_self[i][1]):5.1f}  {by_self[i][0][:52]:52}" if i < len(by_self) else " " * 59
        right = f"{pct(by_total[i][1]):6.1f}  {by_total[i][0]}" if i < len(by_total) else ""
        out.append(f"    {left} {right}\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="scenario (repeatable)")
    parser.add_argument("--out", default="/tmp/zeromesh-profile", help="where raw stacks go (default %(default)s)")
    parser.add_argument("--rate", type=int, default=250, help="samples per second (default %(default)s)")
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every running thread, not only the one holding the GIL (see above)",
    )
    parser.add_argument("--top", type=int, default=12, help="functions per table (default %(default)s)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the broker and children
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        print("py-spy not found: pip install py-spy (into the same venv)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(SCENARIOS):
        spy = PySpy(exe, out, name, args.rate, [] if args.all_threads else ["--gil"])
        result = SCENARIOS[name](spy.attach)
        files = spy.finish()
        numbers = ", ".join(f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())
        print(f"== {name} (under py-spy, so slower than bench/run.py): {numbers}")
        for role, paths in sorted(files.items()):
            print(f"  -- {role}")
            print(summarize(paths, args.top), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
