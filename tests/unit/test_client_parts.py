# SPDX-License-Identifier: MIT
"""The Python client's pure parts: error mapping, the push window, gaps, routing of answers."""

from __future__ import annotations

import builtins

import pytest

import zeromesh
from zeromesh.errors import error_from_header
from zeromesh.messages import to_bytes
from zeromesh.pipeline import PushWindow
from zeromesh.protocol import codec, wire
from zeromesh.subscription import GapTracker
from zeromesh.waiters import PING_PREFIX, Flag, ReplyWaiter, dispatch

pytestmark = pytest.mark.unit


def test_exports():
    for name in [
        "Client",
        "Worker",
        "Job",
        "Event",
        "ZeromeshError",
        "ProtocolError",
        "TimeoutError",
        "RemoteError",
        "NoRespondersError",
        "QueueFullError",
        "DeadLetter",
    ]:
        assert hasattr(zeromesh, name), name
    assert issubclass(zeromesh.TimeoutError, builtins.TimeoutError)
    assert issubclass(zeromesh.TimeoutError, zeromesh.ZeromeshError)
    from zeromesh.worker import DeadLetter

    assert DeadLetter is zeromesh.DeadLetter


@pytest.mark.parametrize(
    "code, cls",
    [
        ("no_responders", zeromesh.NoRespondersError),
        ("queue_full", zeromesh.QueueFullError),
        ("timeout", zeromesh.TimeoutError),
        ("remote", zeromesh.RemoteError),
        ("worker_lost", zeromesh.RemoteError),
        ("shutting_down", zeromesh.RemoteError),
    ],
)
def test_error_codes_map_to_classes(code, cls):
    exc = error_from_header({"id": "e", "re": "r", "code": code, "message": "m"})
    assert type(exc) is cls
    if isinstance(exc, zeromesh.RemoteError):
        assert exc.code == code and exc.message == "m"


def test_remote_error_keeps_the_triple():
    exc = error_from_header(
        {
            "id": "e",
            "code": "remote",
            "message": "bad key",
            "name": "KeyError",
            "traceback": "Traceback ...\nKeyError: 'bad key'",
        }
    )
    assert (exc.name, exc.message, exc.traceback.splitlines()[0]) == ("KeyError", "bad key", "Traceback ...")
    assert "KeyError" in str(exc)


def test_bodies():
    assert to_bytes(b"x") == b"x"
    assert to_bytes("é") == "é".encode()
    assert to_bytes(None) == b""
    assert to_bytes(bytearray(b"ab")) == b"ab"
    with pytest.raises(TypeError):
        to_bytes(3)  # type: ignore[arg-type]


def test_gaps_within_an_epoch_and_across_restarts():
    g = GapTracker()
    assert g.observe("a", 7, "e1") is False  # first event ever: earlier ones predate us
    assert g.observe("a", 8, "e1") is False
    assert g.observe("b", 3, "e1") is False  # first of another topic
    assert g.observe("a", 10, "e1") is True  # 9 missed
    assert g.observe("a", 11, "e1") is False
    assert g.observe("b", 1, "e2") is True  # broker restarted after we saw events
    assert g.observe("a", 1, "e2") is False  # first of its topic in the new epoch
    assert g.observe("a", 2, "e2") is False


def window(n, window=10, batch=4, resend=2.0):
    return PushWindow(Flag(), [f"j{i}" for i in range(n)], window, batch, resend)


def indices(due):
    return [ix for _, ix in due]


def test_window_sends_whole_batches_up_to_the_window():
    w = window(25, window=10, batch=4)
    assert indices(w.due(0.0)) == [[0, 1, 2, 3], [4, 5, 6, 7]]  # 8 out, room 2 < batch 4
    assert w.due(0.1) == []
    for i in range(4):
        w.on_confirm(f"j{i}")
    assert w.confirmed == 4 and w.event.is_set()
    assert indices(w.due(0.2)) == [[8, 9, 10, 11]]
    assert not w.done


def test_window_gives_each_message_its_own_id():
    w = window(8, window=10, batch=4)
    sent = w.due(0.0)
    assert len({mid for mid, _ in sent}) == 2
    assert not set(mid for mid, _ in sent) & set(w.ids)


def test_window_resends_only_unconfirmed_with_the_same_ids():
    w = window(3, window=10, batch=10, resend=2.0)
    [(first, ix)] = w.due(0.0)
    assert ix == [0, 1, 2]
    w.on_confirm("j1")
    assert w.next_resend() == 2.0
    assert w.due(1.9) == []
    [(again, ix)] = w.due(2.0)
    assert ix == [0, 2] and again != first  # the same jobs under a new message id
    w.on_confirm("j0")
    w.on_confirm("j2")
    w.on_confirm("j2")  # a duplicate confirm of a resend counts once
    assert w.done and w.confirmed == 3
    assert w.next_resend() == float("inf")


def test_window_confirms_a_whole_message_by_its_id():
    w = window(8, window=10, batch=4)
    (m1, _), (m2, _) = w.due(0.0)
    w.on_confirm("j5")  # one job of m2 on its own (e.g. after a Redis write)
    w.on_confirm_batch(m1)
    assert w.confirmed == 5 and not w.done
    w.on_confirm_batch(m2)
    w.on_confirm_batch(m2)  # again: nothing more to settle
    w.on_confirm_batch("unknown")
    assert w.done and w.confirmed == 8
    assert w.accepted() == w.ids


def _unknown(message_id: str) -> dict:
    return {"re": message_id, "code": "unknown_command", "message": "unknown command"}


def test_window_steps_down_packed_then_batch_then_push_for_older_brokers():
    w = window(4, window=10, batch=4, resend=2.0)
    assert w.command == wire.PUSH_PACKED
    [(m1, _)] = w.due(0.0)
    w.sent_as[m1] = wire.PUSH_PACKED
    w.on_error(_unknown(m1))  # a revision-3 broker: no PUSH_PACKED
    assert w.command == wire.PUSH_BATCH and w.first_error is None
    [(m2, ix)] = w.due(0.1)  # at once, not after resend_s
    assert ix == [0, 1, 2, 3] and m2 != m1
    w.sent_as[m2] = wire.PUSH_BATCH
    w.on_error(_unknown(m2))  # a revision-1 broker: no PUSH_BATCH either
    assert w.command == wire.PUSH and w.first_error is None
    [(m3, ix)] = w.due(0.2)
    assert ix == [0, 1, 2, 3]
    for i in range(4):
        w.on_confirm(f"j{i}")
    assert w.done and w.first_error is None


def test_window_steps_down_once_for_several_refusals_of_one_form():
    w = window(12, window=12, batch=4, resend=2.0)
    (m1, _), (m2, _), (m3, _) = w.due(0.0)  # all went packed
    w.sent_as.update({m1: wire.PUSH_PACKED, m2: wire.PUSH_PACKED, m3: wire.PUSH_PACKED})
    w.on_error(_unknown(m1))
    w.on_error(_unknown(m2))  # the same refusal again: not a reason to drop batches too
    w.on_error(_unknown(m3))
    assert w.command == wire.PUSH_BATCH
    # Sent again in their first order: the queue is FIFO, a step-down must not reorder jobs.
    assert [ix for _, ix in w.due(0.1)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert w.due(0.2) == []  # once, not again until a resend is due


def test_window_refuses_the_jobs_when_even_push_is_unknown():
    w = window(2, window=10, batch=2)
    [(m1, _)] = w.due(0.0)
    w.sent_as[m1] = wire.PUSH
    w.on_error(_unknown(m1))
    assert w.first_error["code"] == "unknown_command" and w.done


def test_window_refuses_every_job_of_a_refused_message():
    w = window(8, window=10, batch=4)
    (m1, _), _ = w.due(0.0)
    w.on_error({"re": m1, "code": "bad_header", "message": "PUSH_BATCH repeats a job id"})
    assert w.first_error["code"] == "bad_header"
    assert w.due(0.1) == []
    for i in range(4, 8):
        w.on_confirm(f"j{i}")
    assert w.done and w.accepted() == ["j4", "j5", "j6", "j7"]


def test_window_stops_at_the_first_error_and_drains():
    w = window(30, window=10, batch=5)
    assert len(w.due(0.0)) == 2
    w.on_error({"re": "j3", "code": "queue_full", "message": "full"})
    w.on_confirm("j0")
    assert w.due(0.1) == []  # nothing new after an error
    assert not w.done  # j1, j2, j4..j9 still in flight
    for i in (1, 2, 4, 5, 6, 7, 8, 9):
        w.on_confirm(f"j{i}")
    assert w.done
    assert w.first_error["code"] == "queue_full"
    assert w.accepted() == [f"j{i}" for i in range(10) if i != 3]


def test_dispatch_routes_by_re_and_ids_and_drops_stale():
    a, b = ReplyWaiter(Flag()), window(2, batch=2)
    b.due(0.0)
    waiters = {"r1": a, "j0": b, "j1": b}
    confirm = codec.unpack(codec.pack_control(wire.CONFIRM, {"id": "c", "ids": ["j0", "stale", "j1"]}))
    dispatch(confirm, waiters)
    assert b.done
    reply = codec.unpack(
        codec.pack_items(
            wire.REPLY, [({"id": "x", "re": "old"}, b"late"), ({"id": "y", "re": "r1", "headers": {"k": 1}}, b"ok")]
        )
    )
    dispatch(reply, waiters)
    assert a.event.is_set() and a.body == b"ok" and a.header["headers"] == {"k": 1}


def test_dispatch_routes_confirmed_batches_by_message_id():
    w = window(4, batch=2)
    (m1, _), (m2, _) = w.due(0.0)
    confirm = codec.unpack(codec.pack_control(wire.CONFIRM, {"id": "c", "ids": ["j2"], "batches": [m1, "stale"]}))
    dispatch(confirm, {m1: w, m2: w, "j2": w})
    assert w.confirmed == 3 and not w.done


def test_dispatch_wakes_pings_on_heartbeat():
    p = ReplyWaiter(Flag())
    dispatch(codec.unpack(codec.pack_control(wire.HEARTBEAT, {"id": "h", "epoch": "e1"})), {PING_PREFIX + "1": p})
    assert p.event.is_set() and p.header["epoch"] == "e1"


def test_event_lines():
    import json

    from zeromesh import Event
    from zeromesh.display import event_json, event_line

    text = Event("t", "héllo".encode(), {}, 3, "e1", "i1", gap=True)
    binary = Event("t", b"\xff\x00", {"k": 1}, 4, "e1", "i2")
    assert event_line(text) == "t 3 héllo"
    assert event_line(binary) == "t 4 base64:/wA="
    assert json.loads(event_json(text)) == {
        "topic": "t",
        "seq": 3,
        "epoch": "e1",
        "gap": True,
        "id": "i1",
        "body": "héllo",
        "encoding": "utf-8",
    }
    decoded = json.loads(event_json(binary))
    assert (decoded["body"], decoded["encoding"], decoded["headers"]) == ("/wA=", "base64", {"k": 1})


def test_window_reports_settled_messages_once():
    w = window(8, window=10, batch=4)
    (m1, _), (m2, _) = w.due(0.0)
    assert w.settled() == []
    w.on_confirm_batch(m2)
    assert w.settled() == [m2] and w.settled() == []
    for i in range(4):
        w.on_confirm(f"j{i}")  # job by job: noticed when the oldest is looked at
    w.next_resend()
    assert w.settled() == [m1]
    assert w.done
