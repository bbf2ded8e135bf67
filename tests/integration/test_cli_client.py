# SPDX-License-Identifier: MIT
"""The client verbs of the `zeromesh` command, end to end as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from zeromesh import Job

from ..conftest import scaled

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

VERBS = [
    "push",
    "request",
    "publish",
    "subscribe",
    "status",
    "trace",
    "dead-letters",
    "queue",
    "scheduled",
    "cancel",
    "schedules",
]


def zm(broker, *args, stdin=None, env_endpoint=True):
    env = dict(broker.env) if env_endpoint else {k: v for k, v in broker.env.items() if k != "ZEROMESH_BROKER"}
    return subprocess.run(
        [sys.executable, "-m", "zeromesh", *args], input=stdin, env=env, capture_output=True, timeout=scaled(20)
    )


def test_help_on_every_verb_exits_zero(broker):
    procs = {
        verb: subprocess.Popen(
            [sys.executable, "-m", "zeromesh", verb, "--help"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=broker.env,
        )
        for verb in VERBS
    }
    for verb, proc in procs.items():
        out, err = proc.communicate(timeout=scaled(20))
        assert proc.returncode == 0, (verb, err)
        assert b"--endpoint" in out and b"usage: zeromesh " + verb.encode() in out


def test_push_request_status_and_trace(broker, start_worker):
    seen: list[Job] = []
    start_worker(
        broker.endpoint,
        {"echo": lambda job: job.body, "cli-q": seen.append, "slow": lambda job: time.sleep(1) or b"late"},
    )

    out = zm(broker, "push", "cli-q", "--header", "k=v", stdin=b"from stdin\n")
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.decode().strip()
    out = zm(broker, "push", "cli-q", "argument body", "--endpoint", broker.endpoint, env_endpoint=False)
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + scaled(5)
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(j.id, j.body, j.headers) for j in seen][:1] == [(job_id, b"from stdin\n", {"k": "v"})]
    assert seen[1].body == b"argument body"

    out = zm(broker, "request", "echo", "-", stdin=b"\x00\xffraw")
    assert (out.returncode, out.stdout) == (0, b"\x00\xffraw")
    out = zm(broker, "request", "nobody", "x")
    assert out.returncode == 3 and b"no_responders" in out.stderr
    out = zm(broker, "request", "slow", "x", "--timeout", "0.2")
    assert out.returncode == 2 and b"timed out" in out.stderr

    out = zm(broker, "status", "--json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["queues"]["cli-q"]["acked"] == 2 and status["queues"]["cli-q"]["depth"] == 0
    assert "echo" in status["services"] and len(status["workers"]) == 1
    out = zm(broker, "status")
    assert out.returncode == 0 and b"QUEUE" in out.stdout and b"cli-q" in out.stdout

    out = zm(broker, "trace", job_id, "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["state"] == "done"
    out = zm(broker, "trace", "no-such-id")
    assert out.returncode == 1 and b"not_found" in out.stderr


def test_publish_and_subscribe(broker):
    sub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zeromesh",
            "subscribe",
            "news.",
            "--count",
            "2",
            "--json",
            "--timeout",
            str(scaled(15)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=broker.env,
    )
    stop = threading.Event()

    def publisher():  # the slow-joiner loop: publish until the subscriber has had enough
        while not stop.is_set() and sub.poll() is None:
            zm(broker, "publish", "news.today", "héllo")
            zm(broker, "publish", "weather", "ignored")

    t = threading.Thread(target=publisher)
    t.start()
    try:
        out, err = sub.communicate(timeout=scaled(20))
    finally:
        stop.set()
        t.join(scaled(20))
    assert sub.returncode == 0, err
    events = [json.loads(line) for line in out.decode().splitlines()]
    assert len(events) == 2
    assert {e["topic"] for e in events} == {"news.today"} and events[0]["body"] == "héllo"
    assert events[1]["seq"] > events[0]["seq"] and set(events[0]) >= {"topic", "seq", "epoch", "gap", "body"}
