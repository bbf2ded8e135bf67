# SPDX-License-Identifier: MIT
"""Every language pairing that matters, through a real broker (and Redis), in real processes.

Pairings: Python producer -> Ruby worker, Ruby producer -> Java worker, Java
request -> Python service, bash producer -> Python worker through Redis,
Python publish -> Ruby and Java subscribers, Ruby request -> Java service.
Each sends the four bodies of crosslang.BODIES (0 bytes, UTF-8 text, bytes
0..255, 1 MiB of random bytes) and checks that they arrive byte for byte.
Faults: a Ruby worker killed with SIGKILL mid-job has its job redelivered
(attempt 2) to another Ruby worker; a Java request past its deadline ends in
the timeout error about when the deadline passes, not in a hang.

The other languages run through small drivers (clients/ruby/bin/zeromesh-rb,
io.zeromesh.tools.Cli), one process per role per test, each handling all four
bodies. A missing toolchain skips with its reason, which CI=true turns into a failure.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from zeromesh import Client, Job, Worker

from ..conftest import BrokerProcess, RedisServer, scaled, wait_until
from .crosslang import (
    BASH_CLIENT,
    BASH_PUSH,
    BODIES,
    RUBY_DRIVER,
    Driver,
    assert_same,
    bash_client_has_zm_push,
    bash_tools,
    describe,
    java_command,
    read_log,
    ruby_command,
    run,
    write_bodies,
)

pytestmark = pytest.mark.conformance

READY_S = 15  # a driver connects and registers (a JVM start included)
EXCHANGE_S = 30  # four bodies, 1 MiB among them, go through


# -- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def ruby_cli() -> list[str]:
    return ruby_command()


@pytest.fixture(scope="session")
def java_cli() -> list[str]:
    """Built once per session (mvn compile + the runtime classpath)."""
    return java_command()


@pytest.fixture
def client(broker: BrokerProcess) -> Iterator[Client]:
    c = Client(broker.endpoint, broker.pub_endpoint, green=False)
    yield c
    c.close()


@pytest.fixture
def drivers(tmp_path: Path, broker: BrokerProcess) -> Iterator[Callable[..., Driver]]:
    """start(cmd, label): a long-running driver on this test's broker; all stopped at teardown."""
    started: list[Driver] = []

    def start(cmd: list[str], label: str) -> Driver:
        d = Driver(cmd, broker.env, tmp_path, label)
        started.append(d)
        return d.start()

    yield start
    for d in started:
        d.stop(timeout=5)


@pytest.fixture
def python_worker(broker: BrokerProcess, start_worker) -> Callable[[dict[str, Callable[[Job], object]]], Worker]:
    """start({name: handler}): an in-process Python worker, registered before it returns."""
    return lambda handlers: start_worker(broker.endpoint, handlers, concurrency=4)


def work_results(out: Path) -> dict[str, tuple[int, bytes]]:
    """What a `work` driver wrote: {job id: (attempt, body)}."""
    results = {}
    for n, job_id, attempt, size in read_log(out / "ids.log"):
        body = (out / f"{n}.bin").read_bytes()
        assert len(body) == int(size), f"{out}/{n}.bin: {len(body)} bytes, the log says {size}"
        results[job_id] = (int(attempt), body)
    return results


def check_work(out: Path, ids: dict[str, str]) -> None:
    """Each body pushed (ids: name -> job id) was worked once, first attempt, byte for byte."""
    results = work_results(out)
    assert sorted(results) == sorted(ids.values()), f"worked {sorted(results)}, pushed {ids}"
    for name, job_id in ids.items():
        attempt, body = results[job_id]
        assert attempt == 1, f"{name}: attempt {attempt}"
        assert_same(name, BODIES[name], body)


# -- pairings ---------------------------------------------------------------------


def test_python_producer_ruby_worker(ruby_cli, drivers, client, tmp_path):
    out = tmp_path / "ruby-work"
    worker = drivers(
        [*ruby_cli, "work", "xl.py-rb", "--count", "4", "--out", str(out), "--timeout", str(scaled(EXCHANGE_S))],
        "ruby-worker",
    )
    worker.wait_line("ready", READY_S)

    ids = {name: client.push("xl.py-rb", body) for name, body in BODIES.items()}

    assert worker.wait(EXCHANGE_S) == 0, worker.describe()
    check_work(out, ids)


def test_ruby_producer_java_worker(ruby_cli, java_cli, drivers, broker, tmp_path):
    files = write_bodies(tmp_path / "bodies")
    out = tmp_path / "java-work"
    worker = drivers(
        [*java_cli, "work", "xl.rb-java", "--count", "4", "--out", str(out), "--timeout", str(scaled(EXCHANGE_S))],
        "java-worker",
    )
    worker.wait_line("ready", READY_S)

    push = run([*ruby_cli, "push", "xl.rb-java", *map(str, files.values())], broker.env, EXCHANGE_S)
    assert push.returncode == 0, describe(push)
    pushed = push.stdout.decode().split()
    assert len(pushed) == 4, describe(push)

    assert worker.wait(EXCHANGE_S) == 0, worker.describe()
    check_work(out, dict(zip(BODIES, pushed)))


def test_java_request_python_service(java_cli, python_worker, broker, tmp_path):
    seen: list[bytes] = []
    python_worker({"xl.echo": lambda job: seen.append(job.body) or job.body})
    files = write_bodies(tmp_path / "bodies")

    proc = run(
        [*java_cli, "request", "xl.echo", "--timeout", str(scaled(10)), *map(str, files.values())],
        broker.env,
        EXCHANGE_S,
    )

    assert proc.returncode == 0, describe(proc)
    for name, path in files.items():
        assert_same(f"{name} as the Python service got it", BODIES[name], seen[list(files).index(name)])
        assert_same(f"{name} replied to Java", BODIES[name], Path(f"{path}.reply").read_bytes())


def bash_jobs_to_python(python_worker, queue: str) -> Callable[[RedisServer, str], None]:
    """A Python worker of queue recording (headers, attempt, body), and a check that the four
    bodies (header n = the body's name) arrived, first attempt, byte for byte, Redis left empty."""
    got: list[tuple[dict, int, bytes]] = []
    lock = threading.Lock()

    def record(job: Job) -> None:
        with lock:
            got.append((job.headers, job.attempt, job.body))

    python_worker({queue: record})

    def check(redis_server: RedisServer, producer: str) -> None:
        wait_until(
            lambda: len(got) >= len(BODIES),
            scaled(EXCHANGE_S),
            interval=0.05,
            message=f"{len(BODIES)} jobs from {producer} at the Python worker",
        )
        time.sleep(0.2)  # nothing more may come
        arrived = {headers.get("n"): (attempt, body) for headers, attempt, body in got}
        assert len(got) == len(BODIES) and sorted(arrived) == sorted(BODIES), [h for h, _, _ in got]
        for name, (attempt, body) in arrived.items():
            assert attempt == 1, f"{name}: attempt {attempt}"
            assert_same(f"{name} pushed by {producer}", BODIES[name], body)
        r = redis_server.client()
        assert (r.llen(f"zeromesh:queue:{queue}"), r.llen(f"zeromesh:dead:{queue}")) == (0, 0)

    return check


def test_bash_producer_python_worker_through_redis(python_worker, broker, redis_server: RedisServer, tmp_path):
    """redis-cli + jq RPUSH envelopes, {"body"} for text in argv and {"body_b64"} for binary
    through `redis-cli -x`; the broker drains the list to a Python worker."""
    bash_tools()
    check = bash_jobs_to_python(python_worker, "xl.bash")
    files = write_bodies(tmp_path / "bodies")

    proc = run(
        ["bash", str(BASH_PUSH), str(redis_server.socket), "xl.bash", *map(str, files.values())], broker.env, EXCHANGE_S
    )

    assert proc.returncode == 0, describe(proc)
    check(redis_server, "redis-cli")


def test_bash_client_zm_push_python_worker_through_redis(python_worker, broker, redis_server: RedisServer, tmp_path):
    """The bash client's own zm_push (clients/bash/zeromesh.sh), body on stdin."""
    bash_tools()
    if not bash_client_has_zm_push():
        pytest.skip(f"cross-language (bash): {BASH_CLIENT} does not define zm_push")
    check = bash_jobs_to_python(python_worker, "xl.zm")
    files = write_bodies(tmp_path / "bodies")
    env = {**broker.env, "ZEROMESH_REDIS_URL": f"unix://{redis_server.socket}"}
    script = (
        'source "$1"; shift; q=$1; shift\n'
        'for f; do n=${f##*/}; zm_push "$q" - --header "n=${n%.bin}" <"$f" || exit; done'
    )

    proc = run(["bash", "-c", script, "bash", str(BASH_CLIENT), "xl.zm", *map(str, files.values())], env, EXCHANGE_S)

    assert proc.returncode == 0, describe(proc)
    assert len(proc.stdout.split()) == 4, describe(proc)  # the ids
    check(redis_server, "zm_push")


@pytest.mark.parametrize("language", ["ruby", "java"])
def test_python_publish_subscriber(language, request, drivers, client, tmp_path):
    cli = request.getfixturevalue(f"{language}_cli")
    out = tmp_path / f"{language}-sub"
    sub = drivers(
        [
            *cli,
            "subscribe",
            "xl.ev",
            "--warmup",
            "xl.warm",
            "--count",
            "4",
            "--out",
            str(out),
            "--timeout",
            str(scaled(EXCHANGE_S)),
        ],
        f"{language}-subscriber",
    )
    sub.wait_line("ready", READY_S)

    # A new SUB misses what is published before its subscription reaches the broker.
    deadline = time.monotonic() + scaled(READY_S)
    while not sub.has_line("warm"):
        assert time.monotonic() < deadline and sub.running, f"no warm-up seen:\n{sub.describe()}"
        client.publish("xl.warm", b"warm-up")
        time.sleep(0.05)
    for body in BODIES.values():
        client.publish("xl.ev", body)

    assert sub.wait(EXCHANGE_S) == 0, sub.describe()
    events = read_log(out / "events.log")
    assert [e[1] for e in events] == ["xl.ev"] * 4, events
    seqs = [int(e[2]) for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + 4)), f"seqs {seqs}"
    assert [e[3] for e in events] == ["false"] * 4, f"gaps reported: {events}"
    for n, (name, body) in enumerate(BODIES.items(), 1):
        assert_same(f"{name} at the {language} subscriber", body, (out / f"{n}.bin").read_bytes())


def test_ruby_request_java_service(ruby_cli, java_cli, drivers, broker, tmp_path):
    service = drivers(
        [*java_cli, "serve", "xl.echo", "--mode", "echo", "xl.sha", "--mode", "sha256", "xl.fail", "--mode", "fail"],
        "java-service",
    )
    service.wait_line("ready", READY_S)
    files = write_bodies(tmp_path / "bodies")

    proc = run(
        [*ruby_cli, "request", "xl.echo", "--timeout", str(scaled(10)), *map(str, files.values())],
        broker.env,
        EXCHANGE_S,
    )
    assert proc.returncode == 0, describe(proc)
    for name, path in files.items():
        assert_same(f"{name} echoed by Java to Ruby", BODIES[name], Path(f"{path}.reply").read_bytes())

    # The 1 MiB body through stdin, and its digest computed in Java.
    proc = run(
        [*ruby_cli, "request", "xl.sha", "--timeout", str(scaled(10))], broker.env, EXCHANGE_S, stdin=BODIES["mib"]
    )
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.decode() == hashlib.sha256(BODIES["mib"]).hexdigest()

    # A Java handler's exception reaches Ruby as ERROR remote, with the class and message.
    proc = run(
        [*ruby_cli, "request", "xl.fail", "--timeout", str(scaled(10))], broker.env, EXCHANGE_S, stdin=BODIES["utf8"]
    )
    assert proc.returncode == 1, describe(proc)
    code, message = proc.stderr.decode().splitlines()[:2]
    assert code == "remote", describe(proc)
    assert f"failed on purpose ({len(BODIES['utf8'])} bytes)" in message, describe(proc)
    assert service.running, service.describe()


# -- faults -----------------------------------------------------------------------


def test_ruby_worker_killed_mid_job_is_redelivered(ruby_cli, drivers, client, tmp_path):
    first_out, second_out = tmp_path / "first", tmp_path / "second"
    first = drivers(
        [*ruby_cli, "work", "xl.kill", "--count", "1", "--hold", "60", "--out", str(first_out)], "ruby-worker-1"
    )
    first.wait_line("ready", READY_S)
    job_id = client.push("xl.kill", BODIES["mib"])
    assert first.wait_line("start ", EXCHANGE_S) == f"start {job_id} 1"

    # Registered only now, so the job went to the first worker; it waits for the redelivery.
    second = drivers(
        [*ruby_cli, "work", "xl.kill", "--count", "1", "--out", str(second_out), "--timeout", str(scaled(EXCHANGE_S))],
        "ruby-worker-2",
    )
    second.wait_line("ready", READY_S)
    first.kill()  # SIGKILL mid-job: no NACK, no DISCONNECT; the broker finds it dead by missed heartbeats

    assert second.wait(EXCHANGE_S) == 0, second.describe()
    results = work_results(second_out)
    assert list(results) == [job_id], read_log(second_out / "ids.log")
    attempt, body = results[job_id]
    assert attempt == 2, f"redelivered with attempt {attempt}"
    assert_same("the redelivered body", BODIES["mib"], body)
    assert not (first_out / "ids.log").exists(), "the killed worker finished the job"
    assert first.returncode == -9


def test_java_request_deadline(java_cli, python_worker, broker):
    cancelled: list[bool] = []

    def slow(job: Job) -> bytes:
        cancelled.append(job.cancelled.wait(scaled(10)))
        return b"too late"

    python_worker({"xl.slow": slow})
    timeout = 1.0
    started = time.monotonic()
    proc = run([*java_cli, "request", "xl.slow", "--timeout", str(timeout)], broker.env, 20, stdin=b"x")
    wall = time.monotonic() - started

    assert proc.returncode == 2, describe(proc)
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == "timeout", describe(proc)
    elapsed = float(re.search(r"elapsed (\d+\.\d+) s", lines[1]).group(1))
    # The broker's timeout ERROR at the deadline; the client's own margin (1 s) is a bound, not the rule.
    assert timeout <= elapsed < timeout + scaled(0.9), f"request ended after {elapsed} s: {describe(proc)}"
    assert wall < timeout + scaled(8), f"the process took {wall:.1f} s (JVM start included)"
    wait_until(lambda: cancelled, 5, message="the Python handler told of the cancel")
    assert cancelled == [True]


def test_drivers_are_executable():
    assert RUBY_DRIVER.stat().st_mode & 0o111 and BASH_PUSH.stat().st_mode & 0o111
