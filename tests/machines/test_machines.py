# SPDX-License-Identifier: MIT
"""Three machines, each a network namespace (tests/machines/netns.py) running a broker and a
Python worker connected to all three brokers, over one Redis (AOF) in the root namespace;
producers and a caller in the test process use the list of the three brokers. A machine dies
(every process SIGKILLed) or is cut off for 10 s; each test prints its counts."""

from __future__ import annotations

import collections
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

from zeromesh import Client, errors
from zeromesh.protocol import codec, wire

from ..conftest import CHILD_LOG_LEVEL, CI, ROOT, RedisServer, scaled, wait_until
from ..processes import ChildProcess
from .netns import BRIDGE_ADDRESS, Machine, Machines, unavailable_reason

pytestmark = [pytest.mark.machines, pytest.mark.timeout(120)]

BROKER_PORT, PUB_PORT = 5555, 5556  # every machine has its own ports
CONFIG = "[broker]\nrecovery_s = 2.0\n\n[queues.orders]\ndurable = true\n"
WORKER_MAIN = ROOT / "tests" / "integration" / "worker_main.py"
PUSH_TIMEOUT = 15.0
REQUEST_TIMEOUT = 5.0
JOBS_PER_PRODUCER = 300


@pytest.fixture
def machines(tmp_path):
    reason = unavailable_reason()
    if reason:
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)
    with Machines(3, tmp_path) as ms:
        yield ms


class BridgeRedis(RedisServer):
    """redis-server with AOF on the bridge address (and its unix socket for the test's own checks).
    Protected mode off: it refuses other addresses than loopback without a password, and the
    bridge reaches nothing but the test's machines."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as s:
            s.bind((BRIDGE_ADDRESS, 0))
            port = s.getsockname()[1]
        super().__init__(
            directory,
            extra=[
                "--port",
                str(port),
                "--bind",
                BRIDGE_ADDRESS,
                "--protected-mode",
                "no",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
            ],
        )
        self.url_for_machines = f"redis://{BRIDGE_ADDRESS}:{port}"


@pytest.fixture
def bridge_redis(machines, tmp_path):
    server = BridgeRedis(tmp_path / "redis")
    try:
        yield server.start()
    finally:
        server.stop()


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
    """The three machines' brokers and workers, and what the workers recorded."""

    def __init__(self, machines: Machines, redis: BridgeRedis, tmp_path: Path) -> None:
        self.machines = machines
        self.ms = machines.machines
        self.redis = redis
        self.tmp_path = tmp_path
        self.list = ",".join(endpoint(m) for m in self.ms)
        self.pubs = ",".join(pub_endpoint(m) for m in self.ms)
        self.brokers: dict[str, ChildProcess] = {}
        self.records: dict[str, Path] = {}
        config = tmp_path / "broker.toml"
        config.write_text(CONFIG)
        self.config = config

    def start_broker(self, m: Machine) -> ChildProcess:
        cmd = [
            sys.executable,
            "-m",
            "zeromesh",
            "--log-level",
            CHILD_LOG_LEVEL,
            "broker",
            "--config",
            str(self.config),
            "--endpoint",
            f"tcp://0.0.0.0:{BROKER_PORT}",
            "--pub",
            f"tcp://0.0.0.0:{PUB_PORT}",
            "--name",
            m.label,
            "--advertise",
            f"{endpoint(m)},{pub_endpoint(m)}",
        ]
        env = {"PATH": "/usr/bin:/bin", "ZEROMESH_REDIS_URL": self.redis.url_for_machines}
        p = self.machines.run(m, "broker", cmd, env=env, cwd=ROOT, ready=lambda: answers_heartbeat(endpoint(m)))
        self.brokers[m.label] = p
        return p.start(timeout=15)

    def start_worker(self, m: Machine) -> ChildProcess:
        record = self.tmp_path / f"{m.label}-worker.record"
        self.records[m.label] = record
        cmd = [
            sys.executable,
            str(WORKER_MAIN),
            "--endpoint",
            self.list,
            "--record",
            str(record),
            "--label",
            f"{m.label}-worker",
            "--queue",
            "orders",
            "--queue",
            "echo",
            "--sleep",
            "0.02",
            "--concurrency",
            "2",
            "--credit",
            "6",
        ]
        p = self.machines.run(m, "worker", cmd, env={"PATH": "/usr/bin:/bin"}, cwd=ROOT)
        return p.start()

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
        """Every broker lists the three brokers and the three workers."""
        names = [m.label for m in self.ms]
        workers = [f"{n}-worker" for n in names]
        found = self.registered()
        return len(found) == 3 and all(b == names and w == workers for b, w in found.values())

    def wait_healed(self, timeout: float) -> float:
        """When the mesh was healed; failing, what each broker listed."""
        try:
            return wait_until(lambda: self.healed() and time.monotonic(), timeout, 0.2, "the mesh healed")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: (brokers, workers) listed by each broker: {self.registered()}") from None

    def done(self) -> collections.Counter[str]:
        """How many times each job id was handled to the end, over every worker's record."""
        counts: collections.Counter[str] = collections.Counter()
        for record in self.records.values():
            if record.exists():
                for line in record.read_text().splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == "done":
                        counts[parts[1]] += 1
        return counts


@pytest.fixture
def mesh(machines, bridge_redis, tmp_path):
    mesh = Mesh(machines, bridge_redis, tmp_path)
    for m in machines.machines:
        mesh.start_broker(m)
    for m in machines.machines:
        mesh.start_worker(m)
    mesh.wait_healed(20)
    return mesh  # Machines.close() kills every process of it


def client_on(mesh: Mesh, m: Machine, **kw) -> Client:
    """A client of the whole list whose random start is m's broker (bounded tries)."""
    for _ in range(60):
        c = Client(mesh.list, mesh.pubs, green=False, **kw)
        if c.current_endpoint == endpoint(m):
            return c
        c.close()
    raise AssertionError(f"no client started on {endpoint(m)} in 60 tries")


class Producer(threading.Thread):
    """Pushes JOBS_PER_PRODUCER durable jobs one by one; records confirmed ids, errors, the longest call."""

    def __init__(self, client: Client, label: str) -> None:
        super().__init__(name=f"producer-{label}", daemon=True)
        self.client = client
        self.label = label
        self.confirmed: list[str] = []
        self.failed: list[str] = []
        self.longest = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        for n in range(JOBS_PER_PRODUCER):
            if self.stop.is_set():
                break
            t0 = time.monotonic()
            try:
                self.confirmed.append(self.client.push("orders", f"{self.label}-{n}", timeout=PUSH_TIMEOUT))
            except errors.ZeromeshError as exc:
                self.failed.append(f"{type(exc).__name__}: {exc}")
            self.longest = max(self.longest, time.monotonic() - t0)
            time.sleep(0.01)


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


def run_stream(mesh: Mesh, victim: Machine, event, settle: float):
    """Producers on every machine's broker and a caller on the victim's; `event()` happens once a
    quarter of the jobs are confirmed; returns (producers, caller, when the event happened)."""
    producers = [Producer(client_on(mesh, m, failover_s=3.0), m.label) for m in mesh.ms]
    caller = Caller(client_on(mesh, victim, failover_s=3.0))
    threads = [*producers, caller]
    try:
        for t in threads:
            t.start()
        wait_until(
            lambda: sum(len(p.confirmed) for p in producers) >= len(producers) * JOBS_PER_PRODUCER // 4,
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


def report(name: str, mesh: Mesh, producers: list[Producer], caller: Caller, at: float) -> tuple[list[str], dict]:
    confirmed = [jid for p in producers for jid in p.confirmed]
    done = mesh.done()
    handled = sum(1 for jid in confirmed if done[jid])
    duplicates = sum(done[jid] - 1 for jid in confirmed if done[jid] > 1)
    recovered = caller.first_ok_after(at)
    recovered_text = "never" if recovered is None else f"{recovered:.2f}s"
    print(
        f"\n{name}: confirmed {len(confirmed)}, handled {handled}, duplicates {duplicates}, "
        f"failed pushes {sum(len(p.failed) for p in producers)}, longest push "
        f"{max(p.longest for p in producers):.2f}s, requests ok again {recovered_text} after it "
        f"(failures before: {dict(caller.failures)}, longest request {caller.longest:.2f}s)"
    )
    return confirmed, done


def test_a_machine_dies_mid_stream(mesh):
    """Every process of one machine SIGKILLed while durable jobs stream in: every confirmed job is
    handled (those its broker held come back through another's recovery), requests through the
    list succeed again within the failover bound, and no call outlives its deadline."""
    victim = mesh.ms[0]
    r = mesh.redis.client()
    inflight = f"zeromesh:inflight:orders:@broker:{victim.label}"
    killed: list[int] = []
    held: list[int] = []

    def die():
        killed.append(mesh.machines.kill_all(victim))
        held.append(r.llen(inflight))

    producers, caller, at = run_stream(mesh, victim, die, settle=8.0)
    assert killed and killed[0] >= 2  # its broker and its worker at least
    survivors = [m for m in mesh.ms if m is not victim]
    wait_until(
        lambda: all(mesh.done()[jid] for p in producers for jid in p.confirmed), 30, 0.2, "every confirmed job handled"
    )
    confirmed, done = report(
        f"{victim.label} died ({killed[0]} processes, {held[0]} jobs in its broker's in-flight list)",
        mesh,
        producers,
        caller,
        at,
    )
    assert r.llen(inflight) == 0  # recovered by a survivor
    assert len(confirmed) == len(producers) * JOBS_PER_PRODUCER, [p.failed[:2] for p in producers]
    recovered = caller.first_ok_after(at)
    assert recovered is not None and recovered <= 3.0 + scaled(2.5)
    assert max(p.longest for p in producers) < PUSH_TIMEOUT and caller.longest < REQUEST_TIMEOUT + 2
    # The survivors list each other; the dead broker's entry is gone within its 10 s expiry or still listed.
    for m in survivors:
        assert {"m2", "m3"} <= {b["name"] for b in status_of(m)["brokers"]}


def test_a_machine_cut_off_for_10s_heals(mesh):
    """One machine's link down for 10 s, then up: the mesh heals (every broker lists three brokers
    and three workers again) and every confirmed job is handled, its worker's included."""
    victim = mesh.ms[0]
    cut_for = 10.0

    def cut():
        mesh.machines.cut(victim)
        threading.Timer(cut_for, mesh.machines.restore, args=(victim,)).start()

    producers, caller, at = run_stream(mesh, victim, cut, settle=cut_for + 3.0)
    wait_until(lambda: time.monotonic() > at + cut_for, cut_for + 1, 0.1, "the restore")
    healed_at = mesh.wait_healed(25)
    wait_until(
        lambda: all(mesh.done()[jid] for p in producers for jid in p.confirmed), 30, 0.2, "every confirmed job handled"
    )
    confirmed, done = report(f"{victim.label} cut off for {cut_for:.0f}s", mesh, producers, caller, at)
    print(f"healed {healed_at - at - cut_for:.2f}s after the restore: {mesh.registered()}")
    # A push the cut-off broker was storing when its Redis went out of reach is refused, saying so
    # (its answer arrives once the link is back): the producer knows it is not confirmed.
    failed = [f for p in producers for f in p.failed]
    assert len(confirmed) + len(failed) == len(producers) * JOBS_PER_PRODUCER
    assert all(f.startswith("RemoteError: unavailable: could not store the job in Redis") for f in failed), failed
    # Nothing comes back from a cut link, not even a RST: the clients' ZMTP heartbeats (1 s, dropped
    # after 3 s without a pong) turn the silence into a disconnect, then failover_s (3 s) moves them.
    recovered = caller.first_ok_after(at)
    assert recovered is not None and recovered <= 3.0 + 3.0 + scaled(2.5), recovered
    assert max(p.longest for p in producers) < PUSH_TIMEOUT and caller.longest < REQUEST_TIMEOUT + 2
