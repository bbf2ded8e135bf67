# SPDX-License-Identifier: MIT
"""Traces through real brokers on a real Redis (SPEC 12.1): each broker's trace log read with
`trace_events`, merged across brokers by zeromesh.tracing, and propagated from handlers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from zeromesh import Client, DeadLetter, Job, errors, tracing
from zeromesh.protocol import wire

from ..conftest import ROOT, scaled, wait_until
from ..processes import ChildProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HERE = __import__("pathlib").Path(__file__).parent


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


def events_until(client: Client, key: str, last: str, by: str = "id", timeout: float = 10.0) -> list[dict]:
    """The merged events of `key` once one named `last` is among them."""

    def found():
        events = tracing.collect(client, key, by=by)["events"]
        return events if last in names(events) else None

    return wait_until(found, scaled(timeout), 0.05, f"event {last} of {key}")


def test_a_durable_job_nacked_once_then_acked_has_its_whole_timeline_in_order(broker_factory, start_worker):
    b = broker_factory("[queues.tq]\ndurable = true\nretry_base_s = 0.3\nretry_jitter = 0.0\n")
    seen: list[int] = []

    def flaky(job: Job) -> None:
        seen.append(job.attempt)
        if job.attempt == 1:
            raise RuntimeError("not yet")

    start_worker(b.endpoint, {"tq": flaky}, label="flaky-w")
    with Client(b.endpoint, green=False) as client:
        jid = client.push("tq", b"x")
        events = events_until(client, jid, "acked")
        found = tracing.collect(client, jid)
    assert names(events) == ["accepted", "delivered", "nacked", "retry_wait", "delivered", "acked"]
    stamps = [e["t_ms"] for e in events]
    assert stamps == sorted(stamps) and stamps[4] - stamps[3] >= 250  # the retry waited its 0.3 s
    first, second = events[1], events[4]
    assert first["worker"] == {"label": "flaky-w", "lang": "python", "host": socket.gethostname()}
    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert events[2]["error"] == "RuntimeError: not yet" and events[3]["retry_in_ms"] == 300
    assert events[5]["ms"] >= 0 and all(e["broker"] == "main" and e["queue"] == "tq" for e in events)
    assert found["state"]["state"] == "done" and found["brokers"] == ["main"]


def test_a_job_spilled_by_one_broker_and_drained_by_another_shows_both(broker_factory, start_worker):
    b0 = broker_factory(args=["--name", "b0"])
    b1 = broker_factory(args=["--name", "b1"])
    with Client(b0.endpoint, green=False) as c0:
        jid = c0.push("spilled-q", b"x")  # no worker anywhere: b0 spills it to Redis
        wait_until(lambda: "spilled" in names(c0.trace_events(id=jid)), scaled(5), message="spilled on b0")
        start_worker(b1.endpoint, {"spilled-q": lambda job: None}, label="on-b1")
        wait_until(
            lambda: len([x for x in c0.status()["brokers"] if x["name"] in ("b0", "b1")]) == 2,
            scaled(10),
            message="b0 lists both brokers",
        )
        events = events_until(c0, jid, "acked")
    by_broker = [(e["broker"], e["event"]) for e in events]
    assert by_broker == [("b0", "accepted"), ("b0", "spilled"), ("b1", "drained"), ("b1", "delivered"), ("b1", "acked")]


def test_a_dead_lettered_job_replayed_runs_again(broker_factory, start_worker):
    b = broker_factory("[queues.dq]\nmax_attempts = 1\n")
    fail = [True]

    def handler(job: Job) -> None:
        if fail[0]:
            raise DeadLetter("bad input")

    start_worker(b.endpoint, {"dq": handler})
    with Client(b.endpoint, green=False) as client:
        jid = client.push("dq", b"x")
        events_until(client, jid, "dead_lettered")
        fail[0] = False
        assert client.replay("dq", [jid]) == 1
        events = events_until(client, jid, "acked")
    got = names(events)
    assert got[:5] == ["accepted", "delivered", "nacked", "dead_lettered", "replayed"]
    assert got[-2:] == ["delivered", "acked"]
    assert events[3]["error"] == "DeadLetter: bad input"


def test_requests_replied_and_timed_out(broker, start_worker):
    start_worker(broker.endpoint, {"techo": lambda job: job.body, "tslow": lambda job: time.sleep(1.0)})
    with Client(broker.endpoint, green=False) as client:
        assert client.request_full("techo", b"hi", trace="req-trace").body == b"hi"
        with pytest.raises(errors.TimeoutError):
            client.request_full("tslow", b"", timeout=0.2, trace="req-trace")
        with pytest.raises(errors.NoRespondersError):
            client.request_full("nobody", b"", trace="req-trace")
        events = events_until(client, "req-trace", "timeout", by="trace")
    per: dict[str, list[dict]] = {}
    for e in events:
        per.setdefault(e["service"], []).append(e)
    assert names(per["techo"]) == ["accepted", "delivered", "replied"] and per["techo"][2]["ms"] > 0
    assert names(per["tslow"]) == ["accepted", "delivered", "timeout"]
    assert names(per["nobody"]) == ["accepted", "no_responders"]
    assert all(e["kind"] == "request" for e in events)


def test_a_handler_that_pushes_gives_the_child_its_trace_and_parent_threads(broker, start_worker):
    children: list[Job] = []
    with Client(broker.endpoint, green=False) as client:

        def parent(job: Job) -> None:
            time.sleep(0.02)  # several handlers at once, in their own threads
            client.push("tc-child", job.id.encode())
            client.request_full("tc-svc", b"")

        start_worker(
            broker.endpoint,
            {"tc-parent": parent, "tc-child": children.append, "tc-svc": lambda job: b""},
            concurrency=8,  # four parents waiting on tc-svc leave threads to serve it
        )
        roots = [client.push("tc-parent", b"", trace=f"T{n}") for n in range(4)]
        wait_until(lambda: len(children) == 4, scaled(10), message="four children")
        for child in children:
            (root,) = [r for r in roots if r == child.text]
            assert child.trace == f"T{roots.index(root)}"
            accepted = client.trace_events(id=child.id)[0]
            assert accepted["parent"] == root and accepted["trace"] == child.trace
        tree = tracing.collect(client, "T0", by="trace")["events"]
    assert {(e["kind"], e.get("parent")) for e in tree if e["event"] == "accepted"} == {
        ("job", None),
        ("job", roots[0]),
        ("request", roots[0]),
    }
    # Outside a handler, nothing is added: this thread's push has its own trace, no parent.
    assert "parent" not in client_events(broker)


def client_events(broker) -> dict:
    with Client(broker.endpoint, green=False) as client:
        jid = client.push("tc-plain", b"")
        return client.trace_events(id=jid)[0]


def test_a_gevent_handler_that_pushes_gives_each_child_its_own_parent(broker, start_worker):
    children: list[Job] = []
    start_worker(broker.endpoint, {"tg-child": children.append})
    proc = ChildProcess(
        "trace-green",
        [sys.executable, str(HERE / "trace_green_main.py"), broker.endpoint],
        broker.tmp_path / "trace-green.log",
    ).start()
    try:
        with Client(broker.endpoint, green=False) as client:
            roots = client.push_many("tg-parent", [b""] * 6)
            wait_until(lambda: len(children) == 6, scaled(15), message="six children")
            for child in children:
                accepted = client.trace_events(id=child.id)[0]
                assert accepted["parent"] == child.text and child.trace == child.text  # a root's trace is its id
            assert sorted(c.text for c in children) == sorted(roots)
    finally:
        proc.stop(timeout=5)


def test_trace_keep_bounds_the_log(broker_factory):
    b = broker_factory("[broker]\ntrace_keep = 3\n")
    with Client(b.endpoint, green=False) as client:
        ids = client.push_many("kept", [b"x"] * 5)
        # No worker: each is spilled to Redis. The two oldest are forgotten whole.
        assert [names(client.trace_events(id=i)) for i in ids] == [[], []] + [["accepted", "spilled"]] * 3


def test_trace_events_refuses_wrong_arguments_and_the_cli_prints_the_timeline(broker, start_worker):
    start_worker(broker.endpoint, {"cli-tq": lambda job: None})
    with Client(broker.endpoint, green=False) as client:
        for args in ({}, {"id": "a", "trace": "b"}):
            with pytest.raises(errors.RemoteError) as info:
                client.admin("trace_events", **args)
            assert info.value.code == wire.E_BAD_HEADER
        assert client.status()["workers"][0]["host"] == socket.gethostname()
        jid = client.push("cli-tq", b"x", trace="cli-trace")
        events_until(client, jid, "acked")
    env = {**broker.env}
    run = [sys.executable, "-m", "zeromesh", "trace"]
    out = subprocess.run([*run, jid], env=env, cwd=ROOT, capture_output=True, text=True, timeout=scaled(20))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "state: done (cli-tq)"
    assert [line.split()[4] for line in lines[1:]] == ["accepted", "delivered", "acked"]
    assert lines[1].startswith("+      0 ms  main")
    out = subprocess.run(
        [*run, "cli-trace", "--trace", "--json"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert [e["event"] for e in json.loads(out.stdout)["events"]] == ["accepted", "delivered", "acked"]
    out = subprocess.run([*run, "nothing-here"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert out.returncode == 1 and "not_found" in out.stderr


def test_collect_names_the_broker_it_could_not_ask(broker_factory):
    b0 = broker_factory(args=["--name", "b0"])
    broker_factory(args=["--name", "b1"])
    with Client(b0.endpoint, green=False) as client:
        jid = client.push("lonely", b"x")
        wait_until(lambda: len(client.status()["brokers"]) == 2, scaled(10), message="b0 lists b1")

        def refuse(endpoint: str) -> Client:
            raise errors.UnreachableError(f"no broker at {endpoint}")

        found = tracing.collect(client, jid, connect=refuse)
    assert list(found["errors"]) == ["b1"] and "no broker at tcp://127.0.0.1:" in found["errors"]["b1"]
    assert names(found["events"])[0] == "accepted" and found["brokers"] == ["b0"]


def test_a_scheduled_job_is_released_then_delivered_and_a_unique_duplicate_is_named(broker, start_worker):
    start_worker(broker.endpoint, {"later-q": lambda job: None})
    with Client(broker.endpoint, green=False) as client:
        jid = client.push("later-q", b"x", delay=0.3)
        events = events_until(client, jid, "acked")
        first = client.push("uniq-q", b"x", unique_key="k1")
        assert client.push("uniq-q", b"x", unique_key="k1", id="dup-2") == first  # held: nothing queued
        duplicate = events_until(client, "dup-2", "duplicate")
    got = names(events)
    assert got[:3] == ["accepted", "scheduled", "released"] and got[-2:] == ["delivered", "acked"]
    assert events[1]["due_ms"] - events[0]["t_ms"] == pytest.approx(300, abs=60)
    assert names(duplicate) == ["accepted", "duplicate"] and first in duplicate[1]["error"]
