# SPDX-License-Identifier: MIT
"""The worker's pure parts: what a handler's outcome turns into, the outbox, the CLI parser."""

from __future__ import annotations

import pytest

from zeromesh import DeadLetter, Job, Reply, Worker
from zeromesh.cli import build_parser
from zeromesh.outbox import Outbox
from zeromesh.realthreads import RealEvent
from zeromesh.worker_messages import Failed, Nacked

pytestmark = pytest.mark.unit


@pytest.fixture
def worker():
    w = Worker("tcp://127.0.0.1:1", concurrency=2)
    yield w
    w.context.term()


def job(kind="job", name="q", **header):
    base = {"id": "j1", "attempt": 1, "trace": "t1"}
    base.update({"lease_ms": 60000} if kind == "job" else {"timeout_ms": 5000})
    base.update(header)
    return Job(kind, name, base, b"body", RealEvent(), lambda item: None)


def test_job_fields():
    j = job(headers={"k": "v"}, error="ValueError: x", attempt=2)
    assert (j.text, j.headers, j.attempt, j.error, j.lease_s, j.kind) == (
        "body",
        {"k": "v"},
        2,
        "ValueError: x",
        60.0,
        "job",
    )
    assert not j.cancelled.is_set()


def test_default_credit_pipelines_four_per_thread(worker):
    assert worker.credit == 8


def test_outcomes(worker):
    worker.handler("q")(lambda j: "ignored")
    assert worker._table.run(job()) is None  # done: ACK it

    def fail(j):
        raise ValueError("no good")

    worker.handler("q")(fail)
    out = worker._table.run(job())
    assert type(out) is Nacked and (out.error, out.retry) == ("ValueError: no good", True)

    def dead(j):
        raise DeadLetter("poison")

    worker.handler("q")(dead)
    out = worker._table.run(job())
    assert type(out) is Nacked and out.error == "DeadLetter: poison" and out.retry is False


def test_request_outcomes(worker):
    worker.handler("svc")(lambda j: j.text.upper())
    assert worker._table.run(job("request", "svc")).body == b"BODY"
    worker.handler("svc")(lambda j: None)
    assert worker._table.run(job("request", "svc")).body == b""
    worker.handler("svc")(lambda j: Reply(b"x", {"h": 1}))
    out = worker._table.run(job("request", "svc"))
    assert (out.body, out.headers) == (b"x", {"h": 1})

    def fail(j):
        raise KeyError("missing")

    worker.handler("svc")(fail)
    out = worker._table.run(job("request", "svc"))
    fields = out.fields
    assert type(out) is Failed and fields["code"] == "remote" and fields["name"] == "KeyError"
    assert "missing" in fields["message"] and "KeyError" in fields["traceback"]


def test_cancelled_request_is_answered_cancelled(worker):
    worker.handler("svc")(lambda j: b"late")
    j = job("request", "svc")
    j.cancelled.set()
    out = worker._table.run(j)
    assert type(out) is Failed and out.fields["code"] == "cancelled"


def test_outbox_collects_in_order_and_refuses_after_close():
    box = Outbox(None, "inproc://unused")  # type: ignore[arg-type]  # no bell until open()
    box.put(("ack", 1))
    box.put(("ack", 2))
    assert box.take() == [("ack", 1), ("ack", 2)]
    assert box.take() == []
    box.put(("ack", 3))
    assert box.close() == [("ack", 3)]
    box.put(("ack", 4))
    assert box.take() == []


def test_real_event_wait():
    e = RealEvent()
    assert e.wait(0.01) is False
    e.set()
    assert e.wait(0) is True and e.wait() is True


@pytest.mark.parametrize("verb", ["push", "request", "publish", "subscribe", "status", "trace", "dead-letters"])
def test_every_verb_has_help_and_endpoint(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--endpoint" in out and len(out.splitlines()) > 4
