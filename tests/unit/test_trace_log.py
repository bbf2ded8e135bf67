# SPDX-License-Identifier: MIT
"""The broker's trace log: its bounds, its lookups by id and by trace, and the events the router records."""

from __future__ import annotations

import pytest

from zeromesh.broker.admin import AdminError, run_admin
from zeromesh.broker.channels import JOB, REQUEST, Channel, Item
from zeromesh.broker.config import QueueConfig, ServiceConfig
from zeromesh.broker.trace_log import RECORDS_PER_MESSAGE, SLOTS, TraceLog
from zeromesh.protocol import codec, wire

from .test_router import P1, W1, Harness, job_ids

pytestmark = pytest.mark.unit


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


CHAN = Channel("q", QueueConfig(), ServiceConfig())


def job(mid: str, trace: str | None = None) -> Item:
    return Item(JOB, mid, CHAN, b"", None, trace or mid, None, 0.0)


def test_keeps_the_last_keep_messages_cutting_a_batch_oldest_first():
    log = TraceLog("b1", keep=3, keep_s=900.0, wall_offset=0.0)
    batch = [job(f"m{n}") for n in range(4)]
    log.record(1.0, "accepted", batch, ("p", None))
    log.record(1.5, "spilled", ["m0", "m1", "m2", "m3"])
    log.record(2.0, "accepted", "m4", ("p", None, "m4", JOB, "q"))  # logged by id
    assert log.begun == 3
    assert [len(log.of_id(f"m{n}", 500, 3.0)) for n in range(5)] == [0, 0, 2, 2, 1]
    assert names(log.of_id("m3", 500, 3.0)) == ["accepted", "spilled"]


def test_messages_begun_by_id_in_one_record_keep_each_ones_trace():
    log = TraceLog("b1", keep=3, keep_s=900.0, wall_offset=0.0)
    # Four durable jobs of one PUSH_BATCH on their way to Redis: one record, each one's trace in `per`.
    log.record(1.0, "accepted", ["a", "b", "c", "d"], (b"p", "par", None, JOB, "q"), ("Ta", "Tb", "Tb", "Td"))
    assert log.begun == 3  # keep 3: "a" was cut from the record, and its trace with it
    assert [e["id"] for e in log.of_trace("Tb", 500, 2.0)] == ["b", "c"]
    assert log.of_trace("Ta", 500, 2.0) == [] and [e["id"] for e in log.of_trace("Td", 500, 2.0)] == ["d"]
    (only,) = log.of_id("c", 500, 2.0)
    assert (only["trace"], only["queue"], only["parent"], only["peer"]) == ("Tb", "q", "par", b"p".hex())


def test_every_record_counts_against_the_records_cap():
    log = TraceLog("b1", keep=1, keep_s=900.0, wall_offset=0.0)
    log.record(0.0, "accepted", job("a"))
    for n in range(40):
        log.record(1.0 + n, "nacked", "a", {"error": "x"})
    assert len(log.records) == RECORDS_PER_MESSAGE * SLOTS  # the oldest went, the accepted first


def test_forgets_records_older_than_keep_s():
    log = TraceLog("b1", keep=100, keep_s=10.0, wall_offset=0.0)
    log.record(0.0, "accepted", job("old", "T"))
    log.record(5.0, "accepted", job("new", "T"), (b"p", "old"))
    assert [e["id"] for e in log.of_trace("T", 500, 9.0)] == ["old", "new"]
    assert [e["id"] for e in log.of_trace("T", 500, 12.0)] == ["new"]
    log.expire(20.0)
    assert not log.records and log.begun == 0


def test_by_trace_finds_every_message_of_it_merged_by_time_with_their_shapes():
    log = TraceLog("b1", keep=100, keep_s=900.0, wall_offset=1000.0)
    log.record(1.0, "accepted", [job("root")], (b"\x01\x02", None))
    log.record(2.0, "accepted", "child", ("key-a", "root", "root", REQUEST, "svc"))  # a request: by id
    log.record(3.0, "acked", [job("root")], None, [1.5])
    log.record(3.5, "replied", "child", 1.5)
    log.record(3.6, "replied", "stranger", 1.0)  # never accepted here: not shown
    events = log.of_trace("root", 500, 4.0)
    assert [(e["id"], e["event"]) for e in events] == [
        ("root", "accepted"),
        ("child", "accepted"),
        ("root", "acked"),
        ("child", "replied"),
    ]
    root, child_accepted, acked, replied = events
    assert root == {
        "t_ms": 1001000,
        "broker": "b1",
        "id": "root",
        "trace": "root",
        "kind": "job",
        "event": "accepted",
        "queue": "q",
        "peer": "0102",
    }
    assert child_accepted["parent"] == "root" and child_accepted["service"] == "svc"
    assert child_accepted["peer"] == "key-a" and child_accepted["kind"] == "request"
    assert replied["parent"] == "root" and replied["ms"] == 1.5  # every event of the child names its parent
    assert "queue" not in child_accepted and acked["ms"] == 1500.0
    assert len(log.of_trace("root", 2, 4.0)) == 2  # limit: the oldest first
    assert log.of_id("nobody", 500, 4.0) == [] and log.of_id("stranger", 500, 4.0) == []


def test_a_nacked_then_acked_job_has_its_whole_timeline():
    h = Harness(queue_defaults=QueueConfig(max_attempts=3, retry_base_s=1.0, retry_jitter=0.0))
    h.send(P1, codec.pack_items(wire.PUSH, [({"id": "a", "queue": "q", "trace": "T", "parent": "p0"}, b"x")]))
    h.send(W1, codec.pack_control(wire.READY, {"id": "r", "names": ["q"], "credit": 1, "label": "w", "host": "h1"}))
    h.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "a", "error": "boom"}))
    assert job_ids(h.advance(1.1), W1) == ["a"]
    h.advance(0.5)
    h.send(W1, codec.pack_control(wire.ACK, {"id": "k", "ids": ["a"]}))
    events = run_admin(h.router, "trace_events", {"id": "a"}, h.now)["events"]
    assert names(events) == ["accepted", "delivered", "nacked", "retry_wait", "delivered", "acked"]
    assert [e["t_ms"] for e in events] == sorted(e["t_ms"] for e in events)
    assert events[0]["peer"] == P1.hex() and all(e["parent"] == "p0" and e["trace"] == "T" for e in events)
    assert events[1]["worker"] == {"label": "w", "lang": "", "host": "h1"} and events[1]["attempt"] == 1
    assert events[2]["error"] == "boom" and events[3]["retry_in_ms"] == 1000
    assert events[4]["attempt"] == 2 and events[5]["ms"] == pytest.approx(500.0)
    assert run_admin(h.router, "trace_events", {"trace": "T"}, h.now)["events"] == events


def test_requests_are_traced_replied_timed_out_and_without_responders():
    h = Harness()

    def request(rid, timeout_ms=1000):
        header = {"id": rid, "service": "s", "timeout_ms": timeout_ms, "parent": "job-1", "trace": "T2"}
        return h.send(P1, codec.pack_items(wire.REQUEST, [(header, b"")]))

    request("r0")
    h.send(W1, codec.pack_control(wire.READY, {"id": "r", "names": ["s"], "credit": 1}))
    request("r1")
    h.advance(0.25)
    h.send(W1, codec.pack_items(wire.REPLY, [({"id": "x", "re": "r1"}, b"ok")]))
    request("r2", timeout_ms=100)  # delivered to W1, which never answers
    h.advance(0.2)
    by_id: dict[str, list[dict]] = {}
    for e in run_admin(h.router, "trace_events", {"trace": "T2"}, h.now)["events"]:
        by_id.setdefault(e["id"], []).append(e)
    assert names(by_id["r0"]) == ["accepted", "no_responders"]
    assert names(by_id["r1"]) == ["accepted", "delivered", "replied"]
    assert by_id["r1"][2]["ms"] == pytest.approx(250.0) and by_id["r1"][0]["kind"] == "request"
    assert names(by_id["r2"]) == ["accepted", "delivered", "timeout"]


def test_dead_letter_and_replay_and_the_keep_bound():
    h = Harness(trace_keep=3, queue_defaults=QueueConfig(max_attempts=1))
    h.push(P1, "q", "a")
    h.ready(W1, ["q"], 1)
    h.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "a", "error": "bad"}))
    run_admin(h.router, "replay", {"queue": "q"}, h.now)
    h.advance(0.1)
    events = run_admin(h.router, "trace_events", {"id": "a"}, h.now)["events"]
    assert names(events) == ["accepted", "delivered", "nacked", "dead_lettered", "replayed", "delivered"]
    assert events[3]["error"] == "bad" and events[5]["attempt"] == 1
    h.push(P1, "q2", "b", "c", "d", "e")
    kept = [i for i in "abcde" if run_admin(h.router, "trace_events", {"id": i}, h.now)["events"]]
    assert kept == ["c", "d", "e"]


def test_trace_keep_zero_turns_the_log_off_and_the_op_answers_an_empty_list():
    h = Harness(trace_keep=0)
    h.push(P1, "q", "a")
    assert h.router.state.trace is None
    assert run_admin(h.router, "trace_events", {"id": "a"}, h.now) == {"broker": "main", "events": []}


@pytest.mark.parametrize("args", [{}, {"id": "a", "trace": "t"}, {"id": ""}, {"id": "a", "limit": -1}])
def test_trace_events_needs_exactly_one_of_id_and_trace(args):
    h = Harness()
    with pytest.raises(AdminError) as info:
        run_admin(h.router, "trace_events", args, h.now)
    assert info.value.code == wire.E_BAD_HEADER


def test_status_lists_each_workers_host():
    h = Harness()
    h.send(W1, codec.pack_control(wire.READY, {"id": "r", "names": ["q"], "credit": 1, "host": "box-7"}))
    (worker,) = run_admin(h.router, "status", {}, h.now)["workers"]
    assert worker["host"] == "box-7"
