# SPDX-License-Identifier: MIT
"""Push/pull and request/reply through one broker: the Ruby and Java clients against Python.

    .venv/bin/python bench/polyglot_bench.py [--n 20000] [--seconds 3] [--reps 1] \
        [--warm 20000] [--warmup 3] [--only python,ruby,java] [--json PATH]

One broker (a subprocess, ZEROMESH_REDIS_URL=none: in-memory queues) serves every
scenario of the run. For each language, each repetition:

  push     a worker process of the language serves a queue (concurrency 4, credit 500,
           a handler that returns at once, so every job is acked); a producer process of
           the same language first pushes --warm warm-up jobs and waits until the worker has
           handled them, then pushes --n 100-byte jobs, pipelined. Rate = n / (the last job
           handled - the start of the push), both on CLOCK_MONOTONIC, the clock every
           process on the machine shares: jobs/s end to end.
  request  a worker process of the language serves an echo service (concurrency 8,
           credit 64); one caller process of the same language runs 8 threads sharing
           one client, each making one request at a time (100-byte bodies). After --warmup
           seconds, the calls that start and finish inside a --seconds window count: req/s,
           with p50 and p99 latency.

The warm-ups are long enough (20,000 jobs, 3 s) for the JVM to have compiled the Java
client's paths: with 2,000 jobs and 0.5 s, Java's figures were about half its steady
state (the JIT compiler was still running in the measured window). Python and Ruby are
the same either way.

How each client pipelines pushes, with its defaults: Python `Client.push_many` and Ruby
`Client#push_many` and Java `Client.pushMany` (window 5000 unconfirmed, 250 jobs a message);
all send PUSH_PACKED. The languages' role programs are
bench/polyglot/bench_py.py, bench.rb and Bench.java (run as a single-file source program
against clients/java/zeromesh/target/classes). Repetitions interleave the languages; figures are
medians. Ratios are to Python in the same run.

CPU us/job and us/req: user + system CPU of the language's worker and producer (or
callers) processes over the measured part, from /proc, per message; the broker's is left
out (it is the same Python broker for all). Other programs skew the numbers on a small
machine: the run first waits (--wait-quiet) until the CPUs are at most 15% busy, and
measures a scenario again (--retries) when others took over 10% of the CPUs meanwhile.
Needs: ruby with ffi-rzmq and msgpack; java 17 and the client built (mvn, as `make run`
does it); a language whose toolchain is missing is skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "polyglot"
PY = sys.executable
LANGS = ("python", "ruby", "java")


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child speaking JSON lines on stdout; its stderr goes to a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = open(log_dir / f"{name}.log", "wb")
        self.p = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env, cwd=ROOT
        )
        self.buf = b""

    def expect(self, event: str, timeout: float, watch: Proc | None = None) -> dict[str, Any]:
        """The next line of this child with `event`; fails early if `watch` (its peer) exits."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("event") == event:
                    return msg
            if watch is not None and watch.p.poll() is not None:
                raise BenchError(
                    f"{watch.name} exited ({watch.p.returncode}) while {self.name} had no '{event}' "
                    f"(see {watch.log.name})"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: no '{event}' within {timeout} s (see {self.log.name})")
            ready, _, _ = select.select([self.p.stdout], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    raise BenchError(f"{self.name}: exited ({self.p.wait()}) before '{event}' (see {self.log.name})")
                self.buf += chunk

    def send(self, line: str) -> None:
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def stop(self, timeout: float = 10.0) -> None:
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def cpu_s(proc: Proc) -> float:
    """User + system CPU seconds of a child so far (/proc; 10 ms resolution)."""
    return _pid_cpu_s(proc.p.pid)


def busy_s() -> float:
    """Seconds all CPUs were busy so far, whoever used them (/proc/stat, steal included)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    guest = sum(v[8:10]) if len(v) > 9 else 0  # already counted in user and nice
    return (sum(v) - idle - guest) / os.sysconf("SC_CLK_TCK")


class Foreign:
    """The share of all CPUs (0..1) that programs other than ours took between start() and stop()."""

    def __init__(self, broker_pid: int) -> None:
        self.broker_pid = broker_pid

    def _ours(self, procs: list[Proc]) -> float:
        return sum(cpu_s(p) for p in procs) + _pid_cpu_s(self.broker_pid)

    def start(self, procs: list[Proc]) -> None:
        self.t0, self.busy0, self.ours0 = time.monotonic(), busy_s(), self._ours(procs)

    def stop(self, procs: list[Proc]) -> float:
        wall = time.monotonic() - self.t0
        theirs = (busy_s() - self.busy0) - (self._ours(procs) - self.ours0)
        return max(0.0, theirs) / (wall * (os.cpu_count() or 1))


def _pid_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_quiet(limit_s: float, share: float = 0.15) -> float:
    """Wait up to limit_s until the machine is at most `share` busy (others' benchmarks, tests);
    returns the last busy share seen."""
    deadline = time.monotonic() + limit_s
    said = False
    while True:
        b0, t0 = busy_s(), time.monotonic()
        time.sleep(1.0)
        busy = (busy_s() - b0) / ((time.monotonic() - t0) * (os.cpu_count() or 1))
        if busy <= share or time.monotonic() >= deadline:
            return busy
        if not said:
            print(f"waiting up to {limit_s:.0f} s for a quiet machine (now {busy:.0%} busy)", flush=True)
            said = True


def role_cmd(lang: str, java_cp: str) -> list[str]:
    if lang == "python":
        return [PY, str(HERE / "bench_py.py")]
    if lang == "ruby":
        return ["ruby", str(HERE / "bench.rb")]
    return ["java", "-XX:+UseSerialGC", "-cp", java_cp, str(HERE / "Bench.java")]


def available(lang: str) -> tuple[bool, str]:
    """Can this language run here; (False, why) if not. Java builds its client on first use."""
    from zeromesh.nodes.demo import polyglot

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        if lang == "python":
            return True, ""
        if lang == "ruby":
            why = polyglot.check_ruby()
        else:
            why = polyglot.check_java()
        return why is None, why or ""
    finally:
        os.chdir(cwd)


def java_classpath() -> str:
    cp = (ROOT / "clients/java/zeromesh/target/runtime-classpath.txt").read_text().strip()
    return f"{ROOT / 'clients/java/zeromesh/target/classes'}:{cp}"


def run_push(
    lang: str, n: int, warm: int, tag: str, env: dict[str, str], log_dir: Path, java_cp: str, foreign: Foreign
) -> dict[str, Any]:
    base = role_cmd(lang, java_cp)
    queue, service = f"pp-{tag}", f"pp-echo-{tag}"
    worker = Proc(
        f"{tag}-push-worker",
        base
        + [
            "worker",
            "--queue",
            queue,
            "--service",
            service,
            "--total",
            str(warm + n),
            "--mark",
            str(warm),
            "--concurrency",
            "4",
            "--credit",
            "500",
        ],
        env,
        log_dir,
    )
    producer = None
    try:
        worker.expect("ready", 60)
        producer = Proc(
            f"{tag}-push-producer",
            base + ["push", "--queue", queue, "--n", str(n), "--warm", str(warm), "--threads", "16"],
            env,
            log_dir,
        )
        producer.expect("warm-pushed", 120)
        worker.expect("mark", 60)
        cpu_w, cpu_p = cpu_s(worker), cpu_s(producer)
        foreign.start([worker, producer])
        producer.send("go")
        start = producer.expect("start", 10)["t"]
        done = worker.expect("done", 300, watch=producer)["t"]
        cpu_w = cpu_s(worker) - cpu_w
        confirmed = producer.expect("confirmed", 60)
        cpu_p = cpu_s(producer) - cpu_p
        others = foreign.stop([worker, producer])
        if confirmed.get("n") != n:
            raise BenchError(f"{lang}: {confirmed.get('n')} of {n} pushes confirmed")
        return {
            "jobs_s": n / (done - start),
            "seconds": done - start,
            "mode": confirmed.get("mode", ""),
            "worker_cpu_us": cpu_w / n * 1e6,
            "client_cpu_us": cpu_p / n * 1e6,
            "foreign": others,
        }
    finally:
        if producer:
            producer.stop()
        worker.stop()


def run_request(
    lang: str,
    callers: int,
    seconds: float,
    warmup: float,
    tag: str,
    env: dict[str, str],
    log_dir: Path,
    java_cp: str,
    foreign: Foreign,
) -> dict[str, Any]:
    base = role_cmd(lang, java_cp)
    queue, service = f"rr-{tag}", f"echo-{tag}"
    worker = Proc(
        f"{tag}-echo-worker",
        base
        + [
            "worker",
            "--queue",
            queue,
            "--service",
            service,
            "--total",
            "1",
            "--mark",
            "1",
            "--concurrency",
            "8",
            "--credit",
            "64",
        ],
        env,
        log_dir,
    )
    caller = None
    try:
        worker.expect("ready", 60)
        caller = Proc(
            f"{tag}-callers",
            base
            + [
                "request",
                "--service",
                service,
                "--callers",
                str(callers),
                "--seconds",
                str(seconds),
                "--warmup",
                str(warmup),
            ],
            env,
            log_dir,
        )
        window = caller.expect("window", 60)
        time.sleep(max(0.0, window["start"] - time.monotonic()))
        cpu_w, cpu_c = cpu_s(worker), cpu_s(caller)
        foreign.start([worker, caller])
        time.sleep(max(0.0, window["end"] - time.monotonic()))
        cpu_w, cpu_c = cpu_s(worker) - cpu_w, cpu_s(caller) - cpu_c
        others = foreign.stop([worker, caller])
        res = caller.expect("result", seconds + 60)
        calls = max(res["calls"], 1)
        return {
            "req_s": res["calls"] / res["window"],
            "p50_ms": res["p50_ms"],
            "p99_ms": res["p99_ms"],
            "worker_cpu_us": cpu_w / calls * 1e6,
            "client_cpu_us": cpu_c / calls * 1e6,
            "foreign": others,
        }
    finally:
        if caller:
            caller.stop()
        worker.stop()


def start_broker(env: dict[str, str], log_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port, pub = free_port(), free_port()
    endpoint, pub_endpoint = f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{pub}"
    log = open(log_dir / "broker.log", "wb")
    p = subprocess.Popen(
        [PY, "-m", "zeromesh", "--log-level", "WARNING", "broker", "--endpoint", endpoint, "--pub", pub_endpoint],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return p, endpoint, pub_endpoint
        if p.poll() is not None:
            raise BenchError(f"broker exited ({p.returncode}); see {log_dir / 'broker.log'}")
        time.sleep(0.1)
    raise BenchError("broker did not listen within 20 s")


def measured(run: Any, tag: str, args: argparse.Namespace) -> dict[str, Any]:
    """run(tag) after waiting for a quiet machine; again (up to --retries times) when other
    programs took more than 10% of the CPUs meanwhile. Returns the least disturbed run."""
    best = None
    for attempt in range(args.retries + 1):
        if args.wait_quiet > 0:
            wait_quiet(min(args.wait_quiet, 120))
        result = run(f"{tag}-{attempt}")
        if best is None or result["foreign"] < best["foreign"]:
            best = result
        if result["foreign"] <= 0.10:
            break
        print(f"  ({tag}: others took {result['foreign']:.0%} of the CPUs; measuring again)", flush=True)
    return best


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="jobs per push run (default 20000)")
    ap.add_argument("--seconds", type=float, default=3.0, help="request window (default 3)")
    ap.add_argument("--callers", type=int, default=8)
    ap.add_argument("--warm", type=int, default=20000, help="push warm-up jobs (default 20000)")
    ap.add_argument("--warmup", type=float, default=3.0, help="request warm-up seconds before the window (default 3)")
    ap.add_argument("--reps", type=int, default=1, help="repetitions, interleaved; medians (default 1)")
    ap.add_argument("--only", default=",".join(LANGS), help="languages (default python,ruby,java)")
    ap.add_argument("--json", help="also write the runs and medians here")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be at most 15%% busy (default 300; 0: don't)",
    )
    ap.add_argument(
        "--retries",
        type=int,
        default=2,
        help="measure a scenario again when others took over 10%% of the CPUs (default 2)",
    )
    ap.add_argument("--logs", default="", help="folder for process logs (default a temporary one)")
    args = ap.parse_args()

    langs = [x.strip() for x in args.only.split(",") if x.strip()]
    if set(langs) - set(LANGS):
        ap.error(f"--only: unknown {set(langs) - set(LANGS)}")
    skipped = {}
    for lang in list(langs):
        ok, why = available(lang)
        if not ok:
            skipped[lang] = why
            langs.remove(lang)
            print(f"skipping {lang}: {why}", flush=True)
    java_cp = java_classpath() if "java" in langs else ""

    import tempfile

    log_dir = Path(args.logs or tempfile.mkdtemp(prefix="polyglot-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ZEROMESH_REDIS_URL="none")
    env["PATH"] = f"{Path(PY).parent}:{env.get('PATH', '')}"
    if args.wait_quiet > 0:
        wait_quiet(args.wait_quiet)
    broker, endpoint, pub = start_broker(env, log_dir)
    foreign = Foreign(broker.pid)
    env.update(ZEROMESH_BROKER=endpoint, ZEROMESH_PUB=pub)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {lang: {"push": [], "request": []} for lang in langs}
    print(
        f"broker {endpoint} (no Redis); n={args.n} 100-byte jobs, {args.callers} callers x {args.seconds} s; "
        f"logs in {log_dir}",
        flush=True,
    )
    try:
        for rep in range(args.reps):
            for lang in langs:
                tag = f"{lang}-{rep}"
                r = measured(
                    lambda t, lang=lang: run_push(lang, args.n, args.warm, t, env, log_dir, java_cp, foreign), tag, args
                )
                runs[lang]["push"].append(r)
                print(
                    f"  rep {rep + 1} {lang:6} push    {r['jobs_s']:>10,.0f} jobs/s  CPU us/job: worker "
                    f"{r['worker_cpu_us']:.0f}, producer {r['client_cpu_us']:.0f}; "
                    f"others took {r['foreign']:.0%} of the CPUs "
                    f"({r['mode']})",
                    flush=True,
                )
                q = measured(
                    lambda t, lang=lang: run_request(
                        lang, args.callers, args.seconds, args.warmup, t, env, log_dir, java_cp, foreign
                    ),
                    tag,
                    args,
                )
                runs[lang]["request"].append(q)
                print(
                    f"  rep {rep + 1} {lang:6} request {q['req_s']:>10,.0f} req/s  "
                    f"p50 {fmt(q['p50_ms'], 2)} ms p99 {fmt(q['p99_ms'], 2)} ms  CPU us/req: worker "
                    f"{q['worker_cpu_us']:.0f}, callers {q['client_cpu_us']:.0f}; others took {q['foreign']:.0%}",
                    flush=True,
                )
    finally:
        broker.send_signal(signal.SIGTERM)
        try:
            broker.wait(15)
        except subprocess.TimeoutExpired:
            broker.kill()

    med: dict[str, dict[str, float | None]] = {}
    for lang in langs:
        pushes, reqs = runs[lang]["push"], runs[lang]["request"]
        med[lang] = {
            "push_jobs_s": statistics.median(r["jobs_s"] for r in pushes),
            "req_s": statistics.median(r["req_s"] for r in reqs),
            "p50_ms": statistics.median(r["p50_ms"] for r in reqs if r["p50_ms"] is not None),
            "p99_ms": statistics.median(r["p99_ms"] for r in reqs if r["p99_ms"] is not None),
            "push_cpu_us": statistics.median(r["worker_cpu_us"] + r["client_cpu_us"] for r in pushes),
            "req_cpu_us": statistics.median(r["worker_cpu_us"] + r["client_cpu_us"] for r in reqs),
            "foreign_max": max(r["foreign"] for r in pushes + reqs),
        }
    base = med.get("python")
    print()
    print(
        f"| client | push/pull jobs/s | vs Python | CPU us/job | request/reply req/s ({args.callers} callers) "
        f"| vs Python | p50 ms | p99 ms | CPU us/req |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lang in langs:
        m = med[lang]
        rp = f"{m['push_jobs_s'] / base['push_jobs_s']:.2f}x" if base else "-"
        rr = f"{m['req_s'] / base['req_s']:.2f}x" if base else "-"
        print(
            f"| {lang} | {fmt(m['push_jobs_s'])} | {rp} | {fmt(m['push_cpu_us'])} | {fmt(m['req_s'])} | {rr} "
            f"| {fmt(m['p50_ms'], 2)} | {fmt(m['p99_ms'], 2)} | {fmt(m['req_cpu_us'])} |"
        )
    for lang, why in skipped.items():
        print(f"| {lang} | skipped: {why} | | | | | | | |")
    print(
        "\nCPU us = user + system CPU of the worker and the producer (or callers) processes per message, "
        "excluding the broker."
    )
    worst = max((m["foreign_max"] for m in med.values()), default=0.0)
    if worst > 0.10:
        print(
            f"warning: other programs took up to {worst:.0%} of the CPUs during a measurement: "
            "these numbers are low; rerun on a quiet machine"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "n": args.n,
                    "callers": args.callers,
                    "seconds": args.seconds,
                    "reps": args.reps,
                    "runs": runs,
                    "medians": med,
                    "skipped": skipped,
                    "machine": {
                        "cpus": os.cpu_count(),
                        "platform": platform.platform(),
                        "python": platform.python_version(),
                        "ruby": shutil.which("ruby")
                        and subprocess.run(["ruby", "-v"], capture_output=True, text=True).stdout.strip(),
                        "java": shutil.which("java")
                        and subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0],
                    },
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
