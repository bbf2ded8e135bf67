# SPDX-License-Identifier: MIT
"""`Mesh`: a broker on every machine (tests/machines/netns.py) and workers in Python, Ruby and Java
connected to all the brokers, over one Redis URL (a plain Redis or Sentinel on the bridge address);
what the workers recorded, counted per language. Producers and a caller (threads of the test
process, clients of the whole broker list) stream into it, and `report` prints the counts."""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import zmq

from zeromesh import Client, errors
from zeromesh.protocol import codec, wire

from ..conftest import CHILD_LOG_LEVEL, ROOT, scaled, wait_until
from ..processes import ChildProcess
from .netns import Machine, Machines
from .workers import LANGUAGES, WorkerPrograms

BROKER_PORT, PUB_PORT = 5555, 5556  # every machine has its own ports
CONFIG = "[broker]\nrecovery_s = 2.0\n\n[queues.orders]\ndurable = true\n"
PUSH_TIMEOUT = 15.0
REQUEST_TIMEOUT = 5.0
JOBS_PER_PRODUCER = 300
WORKER_START_S = 40.0
"""Three JVMs, three Ruby and three Python workers starting together on two cores take a while."""


def endpoint(m: Machine) -> str:
    return f"tcp://{m.address}:{BROKER_PORT}"


def pub_endpoint(m: Machine) -> str:
    return f"tcp://{m.address}:{PUB_PORT}"


def answers_heartbeat(address: str) -> bool:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(address)
        sock.send_multipart(codec.pack_control(wire.HEARTBEAT, {"id": "ready-check"}))
        return bool(sock.poll(200)) and codec.unpack(sock.recv_multipart()).command == wire.HEARTBEAT
    finally:
        sock.close()


def status_of(m: Machine) -> dict:
    with Client(endpoint(m), pub_endpoint(m), green=False, admin_timeout=2.0) as c:
        return c.status()


class Mesh:
    """The machines' brokers and workers (`languages` on every machine), and what the workers recorded."""

    def __init__(
        self, machines: Machines, redis_url: str, programs: WorkerPrograms, tmp_path: Path, languages=LANGUAGES
    ) -> None:
        self.machines = machines
        self.ms = machines.machines
        self.redis_url = redis_url
        self.programs = programs
        self.languages = tuple(languages)
        self.tmp_path = tmp_path
        self.list = ",".join(endpoint(m) for m in self.ms)
        self.pubs = ",".join(pub_endpoint(m) for m in self.ms)
        self.brokers: dict[str, ChildProcess] = {}
        self.workers: dict[str, ChildProcess] = {}
        self.records: dict[str, Path] = {}  # worker label ("m2-ruby") -> its record
        self.config = tmp_path / "broker.toml"
        self.config.write_text(CONFIG)

    def start(self) -> Mesh:
        for m in self.ms:
            self.start_broker(m)
        for m in self.ms:
            for language in self.languages:
                self.start_worker(m, language)
        self.wait_healed(WORKER_START_S)
        return self

    def start_broker(self, m: Machine) -> ChildProcess:
        cmd = [sys.executable, "-m", "zeromesh", "--log-level", CHILD_LOG_LEVEL, "broker", "--config", str(self.config)]
        cmd += ["--endpoint", f"tcp://0.0.0.0:{BROKER_PORT}", "--pub", f"tcp://0.0.0.0:{PUB_PORT}"]
        cmd += ["--name", m.label, "--advertise", f"{endpoint(m)},{pub_endpoint(m)}"]
        cmd += ["--insecure"]  # the namespace's interfaces: a bridge that reaches only the test's machines
        env = {"PATH": "/usr/bin:/bin", "ZEROMESH_REDIS_URL": self.redis_url}
        p = self.machines.run(m, "broker", cmd, env=env, cwd=ROOT, ready=lambda: answers_heartbeat(endpoint(m)))
        self.brokers[m.label] = p
        return p.start(timeout=15)

    def start_worker(self, m: Machine, language: str) -> ChildProcess:
        label = f"{m.label}-{language}"
        record = self.tmp_path / f"{label}.record"
        self.records[label] = record
        cmd = self.programs.command(language, self.list, record, label, ["orders", "echo"])
        p = self.machines.run(m, language, cmd, env={"PATH": "/usr/bin:/bin"}, cwd=ROOT)
        self.workers[label] = p
        return p.start()

    def worker_labels(self) -> list[str]:
        return sorted(self.records)

    def registered(self) -> dict[str, tuple[list[str], list[str]]]:
        """Per broker: (the brokers its status lists, the labels of its workers); {} for one not answering."""
        out = {}
        for m in self.ms:
            try:
                s = status_of(m)
            except errors.ZeromeshError:
                continue
            out[m.label] = (sorted(b["name"] for b in s.get("brokers", [])), sorted(w["label"] for w in s["workers"]))
        return out

    def healed(self) -> bool:
        """Every broker lists every broker and every worker."""
        names = [m.label for m in self.ms]
        found = self.registered()
        return len(found) == len(names) and all(b == names and w == self.worker_labels() for b, w in found.values())

    def wait_healed(self, timeout: float) -> float:
        """When the mesh was healed; failing, what each broker listed and how each worker process is."""
        try:
            return wait_until(lambda: self.healed() and time.monotonic(), timeout, 0.2, "the mesh healed")
        except AssertionError as exc:
            dead = {label: p.describe() for label, p in self.workers.items() if not p.running}
            raise AssertionError(
                f"{exc}: (brokers, workers) listed by each broker: {self.registered()}; exited workers: {dead}"
            ) from None

    def done_by_worker(self) -> dict[str, collections.Counter[str]]:
        """Per worker label: how many times it handled each id to the end."""
        out: dict[str, collections.Counter[str]] = {}
        for label, record in self.records.items():
            counts: collections.Counter[str] = collections.Counter()
            if record.exists():
                for line in record.read_text().splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == "done":
                        counts[parts[1]] += 1
            out[label] = counts
        return out

    def done(self) -> collections.Counter[str]:
        """How many times each job id was handled to the end, over every worker's record."""
        total: collections.Counter[str] = collections.Counter()
        for counts in self.done_by_worker().values():
            total.update(counts)
        return total


def client_on(mesh: Mesh, m: Machine, **kw) -> Client:
    """A client of the whole list whose random start is m's broker (bounded tries)."""
    for _ in range(60):
        c = Client(mesh.list, mesh.pubs, green=False, **kw)
        if c.current_endpoint == endpoint(m):
            return c
        c.close()
    raise AssertionError(f"no client started on {endpoint(m)} in 60 tries")


class Producer(threading.Thread):
    """Pushes JOBS_PER_PRODUCER durable jobs one by one; records confirmed ids (and when each was
    confirmed), errors, the longest call."""

    def __init__(self, client: Client, label: str, jobs: int = JOBS_PER_PRODUCER) -> None:
        super().__init__(name=f"producer-{label}", daemon=True)
        self.client = client
        self.label = label
        self.jobs = jobs
        self.confirmed: list[str] = []
        self.confirmed_at: list[float] = []
        self.failed: list[str] = []
        self.longest = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        for n in range(self.jobs):
            if self.stop.is_set():
                break
            t0 = time.monotonic()
            try:
                self.confirmed.append(self.client.push("orders", f"{self.label}-{n}", timeout=PUSH_TIMEOUT))
                self.confirmed_at.append(time.monotonic())
            except errors.ZeromeshError as exc:
                self.failed.append(f"{type(exc).__name__}: {exc}")
            self.longest = max(self.longest, time.monotonic() - t0)
            time.sleep(0.01)

    def first_confirmed_after(self, t: float) -> float | None:
        return next((x - t for x in self.confirmed_at if x > t), None)


class Caller(threading.Thread):
    """Idempotent echo requests through the list, every 50 ms: when each one succeeded, and the failures."""

    def __init__(self, client: Client) -> None:
        super().__init__(name="caller", daemon=True)
        self.client = client
        self.ok_at: list[float] = []
        self.failures: collections.Counter[str] = collections.Counter()
        self.longest = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                self.client.request("echo", b"ping", timeout=REQUEST_TIMEOUT, idempotent=True)
                self.ok_at.append(time.monotonic())
            except errors.ZeromeshError as exc:
                self.failures[type(exc).__name__] += 1
            self.longest = max(self.longest, time.monotonic() - t0)
            self.stop.wait(0.05)

    def first_ok_after(self, t: float) -> float | None:
        return next((x - t for x in self.ok_at if x > t), None)


def run_stream(mesh: Mesh, caller_on: Machine, event: Callable[[], None], settle: float, jobs: int = JOBS_PER_PRODUCER):
    """Producers on every machine's broker and a caller on `caller_on`'s; `event()` happens once a
    quarter of the jobs are confirmed; returns (producers, caller, when the event happened)."""
    producers = [Producer(client_on(mesh, m, failover_s=3.0), m.label, jobs) for m in mesh.ms]
    caller = Caller(client_on(mesh, caller_on, failover_s=3.0))
    threads = [*producers, caller]
    try:
        for t in threads:
            t.start()
        wait_until(
            lambda: sum(len(p.confirmed) for p in producers) >= len(producers) * jobs // 4,
            20,
            0.01,
            "a quarter of the jobs confirmed",
        )
        at = time.monotonic()
        event()
        for p in producers:
            p.join(scaled(PUSH_TIMEOUT + 40))
            assert not p.is_alive(), f"{p.name} hangs"
        time.sleep(max(0.0, at + settle - time.monotonic()))  # the caller sees the recovery
        caller.stop.set()
        caller.join(scaled(REQUEST_TIMEOUT + 5))
        assert not caller.is_alive(), "the caller hangs"
        return producers, caller, at
    finally:
        for t in threads:
            t.stop.set()
        for t in threads:
            t.join(scaled(PUSH_TIMEOUT + 5))
            t.client.close()


def wait_all_handled(mesh: Mesh, producers: list[Producer], timeout: float = 30) -> None:
    def missing() -> list[str]:
        done = mesh.done()
        return [jid for p in producers for jid in p.confirmed if not done[jid]]

    try:
        wait_until(lambda: not missing(), timeout, 0.2, "every confirmed job handled")
    except AssertionError as exc:
        lost = missing()
        raise AssertionError(f"{exc}: {len(lost)} confirmed jobs never handled, e.g. {lost[:5]}") from None


def by_language(mesh: Mesh, confirmed: list[str]) -> dict[str, tuple[int, int]]:
    """Per language: (runs to the end of confirmed jobs, of which runs of a job handled more than once)."""
    total = mesh.done()
    wanted = set(confirmed)
    out = {language: [0, 0] for language in mesh.languages}
    for label, counts in mesh.done_by_worker().items():
        language = label.split("-", 1)[1]
        for jid, n in counts.items():
            if jid in wanted:
                out[language][0] += n
                if total[jid] > 1:
                    out[language][1] += n
    return {language: (runs, dup) for language, (runs, dup) in out.items()}


def language_text(languages: dict[str, tuple[int, int]]) -> str:
    """What `by_language` counted, in words."""
    return ", ".join(
        f"{lang} {runs} runs ({dup} of a job run more than once)" for lang, (runs, dup) in languages.items()
    )


def report(name: str, mesh: Mesh, producers: list[Producer], caller: Caller, at: float) -> dict[str, tuple[int, int]]:
    """Prints the counts, over all and per worker language; returns the per-language ones."""
    confirmed = [jid for p in producers for jid in p.confirmed]
    done = mesh.done()
    handled = sum(1 for jid in confirmed if done[jid])
    duplicates = sum(done[jid] - 1 for jid in confirmed if done[jid] > 1)
    recovered = caller.first_ok_after(at)
    recovered_text = "never" if recovered is None else f"{recovered:.2f}s"
    languages = by_language(mesh, confirmed)
    print(
        f"\n{name}: confirmed {len(confirmed)}, handled {handled}, duplicates {duplicates}, "
        f"failed pushes {sum(len(p.failed) for p in producers)}, longest push "
        f"{max(p.longest for p in producers):.2f}s, requests ok again {recovered_text} after it "
        f"(failures before: {dict(caller.failures)}, longest request {caller.longest:.2f}s); "
        f"by worker language: {language_text(languages)}"
    )
    return languages


__all__ = [
    "JOBS_PER_PRODUCER",
    "PUSH_TIMEOUT",
    "REQUEST_TIMEOUT",
    "Caller",
    "Mesh",
    "Producer",
    "by_language",
    "client_on",
    "language_text",
    "endpoint",
    "report",
    "run_stream",
    "status_of",
    "wait_all_handled",
]
