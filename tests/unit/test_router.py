# SPDX-License-Identifier: MIT
"""The routing state machine without sockets: frames in, frames out, time passed in."""

from __future__ import annotations

import logging

import msgpack
import pytest

from zeromesh.broker.config import BrokerConfig, QueueConfig, ServiceConfig
from zeromesh.broker.router import Router
from zeromesh.protocol import codec, wire

pytestmark = pytest.mark.unit

P1, P2, W1, W2 = b"\x00p1", b"\x00p2", b"\x00w1", b"\x00w2"


class Harness:
    def __init__(self, **config):
        self.now = 100.0
        self.router = Router(BrokerConfig(**config), "epoch1", logging.getLogger("test"), self.now)

    def send(self, peer, frames):
        self.router.handle(peer, frames, self.now)
        self.router.flush(self.now)
        return self.take()

    def advance(self, seconds):
        self.now += seconds
        self.router.expire(self.now)
        self.router.flush(self.now)
        return self.take()

    def take(self):
        out = [(frames[0], codec.unpack(frames[1:])) for frames in self.router.outbox]
        self.router.outbox.clear()
        return out

    def push(self, peer, queue, *ids):
        return self.send(peer, codec.pack_items(wire.PUSH, [({"id": i, "queue": queue}, i.encode()) for i in ids]))

    def ready(self, peer, names, credit):
        return self.send(peer, codec.pack_control(wire.READY, {"id": "r", "names": names, "credit": credit}))


def of(out, peer, command):
    return [env for p, env in out if p == peer and env.command == command]


def job_ids(out, peer):
    return [h["id"] for env in of(out, peer, wire.JOB) for h, _ in env.items]


def test_push_is_confirmed_in_one_batch():
    h = Harness()
    out = h.push(P1, "q", "a", "b", "c")
    (confirm,) = of(out, P1, wire.CONFIRM)
    assert confirm.header["ids"] == ["a", "b", "c"]
    assert len(h.router.channels["q"].jobs) == 3


def test_jobs_go_fifo_only_to_workers_with_credit_and_fairly():
    h = Harness()
    h.push(P1, "q", *[f"j{i}" for i in range(10)])
    out = h.ready(W1, ["q"], 3)
    assert job_ids(out, W1) == ["j0", "j1", "j2"]
    out = h.ready(W2, ["q"], 3)
    assert job_ids(out, W2) == ["j3", "j4", "j5"]
    # W1 acks two: it gets exactly two more, the next in order
    out = h.send(W1, codec.pack_control(wire.ACK, {"id": "a", "ids": ["j0", "j1"]}))
    assert job_ids(out, W1) == ["j6", "j7"]
    assert h.router.channels["q"].acked == 2


def test_backlog_is_spread_across_workers():
    h = Harness()
    h.ready(W1, ["q"], 100)
    h.ready(W2, ["q"], 100)
    out = h.push(P1, "q", *[f"j{i}" for i in range(10)])
    assert len(job_ids(out, W1)) == 5 and len(job_ids(out, W2)) == 5


def test_nack_requeues_at_head_then_dead_letters():
    h = Harness(queue_defaults=QueueConfig(max_attempts=2, retry_base_s=0.0))
    h.push(P1, "q", "a", "b")
    out = h.ready(W1, ["q"], 1)
    assert job_ids(out, W1) == ["a"]
    out = h.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "a", "error": "boom"}))
    (job,) = of(out, W1, wire.JOB)
    assert job.header["id"] == "a" and job.header["attempt"] == 2 and job.header["error"] == "boom"
    out = h.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "a", "error": "boom again"}))
    assert job_ids(out, W1) == ["b"]
    chan = h.router.channels["q"]
    assert [i.id for i in chan.dead] == ["a"] and chan.dead[0].error == "boom again"


def test_a_nacked_job_waits_its_backoff_while_the_jobs_behind_it_flow():
    h = Harness(queue_defaults=QueueConfig(max_attempts=4, retry_base_s=1.0, retry_factor=3.0, retry_jitter=0.0))
    h.push(P1, "q", "a", "b", "c")
    assert job_ids(h.ready(W1, ["q"], 1), W1) == ["a"]
    out = h.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "a", "error": "boom"}))
    assert job_ids(out, W1) == ["b"]  # a waits 1 s; b does not wait behind it
    assert h.router.timeout(h.now) == pytest.approx(1.0)
    out = h.send(W1, codec.pack_control(wire.ACK, {"id": "k", "ids": ["b"]}))
    assert job_ids(out, W1) == ["c"]
    h.send(W1, codec.pack_control(wire.ACK, {"id": "k", "ids": ["c"]}))
    assert job_ids(h.advance(0.9), W1) == []
    (job,) = of(h.advance(0.2), W1, wire.JOB)
    assert job.header["id"] == "a" and job.header["attempt"] == 2 and job.header["error"] == "boom"
    h.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "a", "error": "again"}))
    assert job_ids(h.advance(2.9), W1) == []  # 1 s * 3: the second wait is 3 s
    assert job_ids(h.advance(0.2), W1) == ["a"]
    # The worker may name its own delay.
    h.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "a", "error": "later", "retry_in_ms": 500}))
    assert job_ids(h.advance(0.4), W1) == []
    assert job_ids(h.advance(0.2), W1) == ["a"]


def test_nack_without_retry_dead_letters_at_once():
    h = Harness()
    h.push(P1, "q", "a")
    h.ready(W1, ["q"], 1)
    h.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "a", "error": "bad", "retry": False}))
    assert [i.id for i in h.router.channels["q"].dead] == ["a"]


def test_dead_worker_jobs_return_to_head_in_order():
    h = Harness(heartbeat_s=1.0, liveness=3)
    h.push(P1, "q", "a", "b", "c")
    h.ready(W1, ["q"], 2)
    h.now += 2.0
    h.ready(W2, ["q"], 5)  # W2 alive and gets c
    out = h.advance(2.5)  # W1 silent for 4.5 s: dead
    assert W1 not in h.router.workers
    assert job_ids(out, W2) == ["a", "b"]
    assert h.router.ledger.jobs_by_id["a"].attempt == 2
    assert h.router.ledger.jobs_by_id["a"].error.startswith("worker lost")


def test_disconnect_hands_back_without_counting_an_attempt():
    h = Harness()
    h.push(P1, "q", "a")
    h.ready(W1, ["q"], 1)
    h.send(W1, codec.pack_control(wire.DISCONNECT, {"id": "d"}))
    item = h.router.channels["q"].jobs[0]
    assert item.id == "a" and item.attempt == 0


def test_lease_expiry_and_extension():
    h = Harness(queue_defaults=QueueConfig(lease_s=5.0), heartbeat_s=1.0, liveness=100)
    h.push(P1, "q", "a", "b")
    h.ready(W1, ["q"], 2)
    h.now += 3
    h.send(W1, codec.pack_control(wire.EXTEND, {"id": "e", "ids": ["a"], "lease_ms": 10_000}))
    out = h.advance(3)  # b's lease (5 s) has expired, a's was extended
    held = h.router.workers[W1].held
    assert "a" in held and h.router.ledger.jobs_by_id["a"].attempt == 1
    # b went back to the queue and, W1 having a free slot again, straight back out as attempt 2
    assert job_ids(out, W1) == ["b"]
    b = h.router.ledger.jobs_by_id["b"]
    assert b.attempt == 2 and "lease expired" in b.error


def test_duplicate_push_is_confirmed_but_enqueued_once():
    h = Harness()
    h.push(P1, "q", "a")
    out = h.push(P1, "q", "a")
    assert of(out, P1, wire.CONFIRM)[0].header["ids"] == ["a"]
    assert len(h.router.channels["q"].jobs) == 1


def test_queue_full_refuses_with_clear_error():
    h = Harness(queue_defaults=QueueConfig(max_depth=2))
    out = h.push(P1, "q", "a", "b", "c")
    assert of(out, P1, wire.CONFIRM)[0].header["ids"] == ["a", "b"]
    (err,) = of(out, P1, wire.ERROR)
    assert err.header["code"] == wire.E_QUEUE_FULL and err.header["re"] == "c"


def test_request_without_worker_fails_at_once():
    h = Harness()
    out = h.send(P1, codec.pack_item(wire.REQUEST, {"id": "r1", "service": "s", "timeout_ms": 1000}, b""))
    (err,) = of(out, P1, wire.ERROR)
    assert err.header == {**err.header, "re": "r1", "code": wire.E_NO_RESPONDERS}


def test_request_wait_then_worker_appears():
    h = Harness()
    out = h.send(
        P1, codec.pack_item(wire.REQUEST, {"id": "r1", "service": "s", "timeout_ms": 5000, "wait": True}, b"x")
    )
    assert out == []
    h.now += 1
    out = h.ready(W1, ["s"], 4)
    (req,) = of(out, W1, wire.REQUEST)
    assert req.header["id"] == "r1" and 3900 <= req.header["timeout_ms"] <= 4000
    reply = codec.pack_item(wire.REPLY, {"id": "x1", "re": "r1"}, b"answer")
    out = h.send(W1, reply)
    ((peer, env),) = out
    assert peer == P1 and env.command == wire.REPLY and env.items[0][1] == b"answer"


def test_one_reply_message_per_requester_for_a_workers_batched_reply():
    # Greenlets of one process share a DEALER: the items a worker answers together for that peer
    # go back as one REPLY, in order; another peer's item goes on its own, and a late one nowhere.
    h = Harness()
    h.ready(W1, ["s"], 10)
    for peer, rid in ((P1, "a"), (P2, "b"), (P1, "c"), (P1, "d"), (P1, "late")):
        timeout_ms = 1000 if rid != "late" else 10
        h.send(peer, codec.pack_item(wire.REQUEST, {"id": rid, "service": "s", "timeout_ms": timeout_ms}, b""))
    h.advance(0.05)  # "late" times out: its caller has an ERROR already
    items = [({"id": f"x{rid}", "re": rid}, rid.encode()) for rid in ("a", "b", "late", "c", "d")]
    out = h.send(W1, codec.pack_items(wire.REPLY, items))
    assert [(peer, env.command) for peer, env in out] == [(P1, wire.REPLY), (P2, wire.REPLY)]
    assert [(hdr["re"], body) for hdr, body in out[0][1].items] == [("a", b"a"), ("c", b"c"), ("d", b"d")]
    assert [(hdr["re"], body) for hdr, body in out[1][1].items] == [("b", b"b")]
    assert h.router.counters["late_replies"] == 1
    assert h.router.workers[W1].held == {} and not h.router.ledger.requests_by_id


def test_request_deadline_gives_timeout_error_and_cancels_worker():
    h = Harness()
    h.ready(W1, ["s"], 4)
    h.send(P1, codec.pack_item(wire.REQUEST, {"id": "r1", "service": "s", "timeout_ms": 500}, b""))
    out = h.advance(0.6)
    assert of(out, P1, wire.ERROR)[0].header["code"] == wire.E_TIMEOUT
    assert of(out, W1, wire.CANCEL)[0].header["re"] == "r1"
    out = h.send(W1, codec.pack_item(wire.REPLY, {"id": "x", "re": "r1"}, b"late"))
    assert of(out, P1, wire.REPLY) == []
    assert h.router.workers[W1].held == {}


def test_answered_requests_do_not_set_the_loops_timeout():
    # Their deadlines stay in the heap; if they set the poll timeout, a busy broker would wake for
    # each one (every 77 us at 13k requests/s) and keep doing so for a whole timeout after the load.
    h = Harness(heartbeat_s=1.0)
    h.ready(W1, ["s"], 10)
    for i in range(5):
        h.send(P1, codec.pack_item(wire.REQUEST, {"id": f"r{i}", "service": "s", "timeout_ms": 200 + i}, b""))
        h.send(W1, codec.pack_item(wire.REPLY, {"id": f"a{i}", "re": f"r{i}"}, b"ok"))
    h.send(P1, codec.pack_item(wire.REQUEST, {"id": "live", "service": "s", "timeout_ms": 600}, b""))
    h.now += 0.1
    assert h.router.timeout(h.now) == pytest.approx(0.5)  # the live request's deadline, not r0's at 0.1
    h.send(W1, codec.pack_item(wire.REPLY, {"id": "a", "re": "live"}, b"ok"))
    assert h.router.timeout(h.now) == pytest.approx(h.router.next_tick - h.now)  # only the tick is left
    assert not h.router.ledger.deadlines


def test_worker_lost_with_request_retries_once_then_fails():
    h = Harness(service_defaults=ServiceConfig(max_attempts=1), heartbeat_s=1.0, liveness=2)
    h.ready(W1, ["s"], 4)
    h.send(P1, codec.pack_item(wire.REQUEST, {"id": "r1", "service": "s", "timeout_ms": 60000}, b""))
    out = h.advance(3.0)
    assert of(out, P1, wire.ERROR)[0].header["code"] == wire.E_WORKER_LOST


def test_publish_numbers_each_topic_and_carries_epoch_and_broker_name():
    h = Harness(name="b-east")
    h.send(
        P1,
        codec.pack_items(
            wire.PUBLISH,
            [
                ({"id": "e1", "topic": "a"}, b"1"),
                ({"id": "e2", "topic": "b"}, b"2"),
                ({"id": "e3", "topic": "a"}, b"3"),
            ],
        ),
    )
    events = [codec.unpack_event(f) for f in h.router.events]
    assert [(t, hd["seq"], hd["epoch"], hd["broker"]) for t, hd, _ in events] == [
        ("a", 1, "epoch1", "b-east"),
        ("b", 1, "epoch1", "b-east"),
        ("a", 2, "epoch1", "b-east"),
    ]


@pytest.mark.parametrize(
    "frames, code",
    [
        ([b"junk"], wire.E_BAD_FRAME),
        ([b"ZM\x02\x01", b"\x80", b""], wire.E_BAD_VERSION),
        ([b"ZM\x01\x7f", b"\x80"], wire.E_UNKNOWN_COMMAND),
        ([b"ZM\x01\x01", b"\xc1", b""], wire.E_BAD_HEADER),
        (codec.pack_control(wire.CONFIRM, {"id": "x", "ids": []}), wire.E_UNKNOWN_COMMAND),
    ],
)
def test_bad_input_is_answered_counted_and_changes_nothing(frames, code):
    h = Harness()
    h.push(P1, "q", "a")
    out = h.send(P2, frames)
    ((peer, err),) = out
    assert peer == P2 and err.command == wire.ERROR and err.header["code"] == code
    assert h.router.counters[f"bad_input.{code}"] == 1
    assert [i.id for i in h.router.channels["q"].jobs] == ["a"]


def test_oversized_body_is_too_large():
    h = Harness(max_message=10)
    out = h.send(P1, codec.pack_item(wire.PUSH, {"id": "big", "queue": "q"}, b"x" * 11))
    error = of(out, P1, wire.ERROR)[0].header
    assert error == {**error, "code": wire.E_TOO_LARGE, "re": "big"}
    assert "q" not in h.router.channels


def test_ack_from_unknown_peer_is_unknown_peer():
    h = Harness()
    out = h.send(P1, codec.pack_control(wire.ACK, {"id": "a", "ids": ["x"]}))
    assert of(out, P1, wire.ERROR)[0].header["code"] == wire.E_UNKNOWN_PEER


def test_admin_trace_follows_a_job():
    from zeromesh.broker.admin import run_admin

    h = Harness()
    h.push(P1, "q", "a", "b")
    assert run_admin(h.router, "trace", {"id": "b"}, h.now)["state"] == "queued"
    h.ready(W1, ["q"], 1)
    t = run_admin(h.router, "trace", {"id": "a"}, h.now)
    assert t["state"] == "in_flight" and t["worker"].endswith(W1.hex())
    h.send(W1, codec.pack_control(wire.ACK, {"id": "x", "ids": ["a"]}))
    assert run_admin(h.router, "trace", {"id": "a"}, h.now)["state"] == "done"


def test_admin_over_the_wire_and_unknown_op():
    h = Harness()
    out = h.send(P1, codec.pack_control(wire.ADMIN, {"id": "s", "op": "status"}))
    ((_, env),) = out
    assert msgpack.unpackb(env.items[0][1])["epoch"] == "epoch1"
    out = h.send(P1, codec.pack_control(wire.ADMIN, {"id": "s", "op": "nope"}))
    assert of(out, P1, wire.ERROR)[0].header["code"] == wire.E_UNKNOWN_OP


def test_drain_refuses_new_work_and_finish_fails_pending_requests():
    h = Harness()
    h.send(P1, codec.pack_item(wire.REQUEST, {"id": "r1", "service": "s", "timeout_ms": 5000, "wait": True}, b""))
    h.router.begin_drain()
    out = h.push(P1, "q", "a")
    assert of(out, P1, wire.ERROR)[0].header["code"] == wire.E_SHUTTING_DOWN
    h.router.finish()
    out = h.take()
    assert of(out, P1, wire.ERROR)[0].header["code"] == wire.E_SHUTTING_DOWN


# -- batch commands ------------------------------------------------------------


def push_batch(h, peer, queue, mid, *ids, **extra):
    header = {"id": mid, "queue": queue, "ids": list(ids), **extra}
    return h.send(peer, codec.pack_batch(wire.PUSH_BATCH, header, [i.encode() for i in ids]))


def ready_batch(h, peer, names, credit):
    return h.send(peer, codec.pack_control(wire.READY, {"id": "r", "names": names, "credit": credit, "batch": True}))


def batch_job_ids(out, peer):
    return [i for env in of(out, peer, wire.JOB_BATCH) for i in env.header["ids"]]


def test_push_batch_accepted_whole_is_confirmed_by_message_id():
    h = Harness()
    out = push_batch(h, P1, "q", "m1", "a", "b", "c")
    (confirm,) = of(out, P1, wire.CONFIRM)
    assert confirm.header == {"id": confirm.header["id"], "ids": [], "batches": ["m1"]}
    chan = h.router.channels["q"]
    assert [i.id for i in chan.jobs] == ["a", "b", "c"] and [i.body for i in chan.jobs] == [b"a", b"b", b"c"]
    assert all(i.trace == i.id for i in chan.jobs)


def test_push_batch_and_push_confirmed_together():
    h = Harness()
    h.router.handle(P1, codec.pack_batch(wire.PUSH_BATCH, {"id": "m1", "queue": "q", "ids": ["a"]}, [b"a"]), h.now)
    h.router.handle(P1, codec.pack_items(wire.PUSH, [({"id": "x", "queue": "q"}, b"x")]), h.now)
    h.router.flush(h.now)
    (confirm,) = of(h.take(), P1, wire.CONFIRM)
    assert confirm.header["ids"] == ["x"] and confirm.header["batches"] == ["m1"]


def test_push_batch_with_a_known_id_goes_job_by_job():
    h = Harness()
    h.push(P1, "q", "b")
    out = push_batch(h, P1, "q", "m1", "a", "b", "c")
    (confirm,) = of(out, P1, wire.CONFIRM)
    assert confirm.header["ids"] == ["a", "b", "c"] and "batches" not in confirm.header
    assert [i.id for i in h.router.channels["q"].jobs] == ["b", "a", "c"]  # b queued once
    assert h.router.counters["duplicate_pushes"] == 1


def test_push_batch_past_the_depth_limit_is_refused_per_job():
    h = Harness(queues={"q": QueueConfig(max_depth=2)})
    out = push_batch(h, P1, "q", "m1", "a", "b", "c")
    (confirm,) = of(out, P1, wire.CONFIRM)
    assert confirm.header["ids"] == ["a", "b"]
    (error,) = of(out, P1, wire.ERROR)
    assert error.header["re"] == "c" and error.header["code"] == wire.E_QUEUE_FULL


def test_push_batch_carries_shared_headers_and_trace():
    h = Harness()
    push_batch(h, P1, "q", "m1", "a", "b", headers={"k": 1}, trace="t1")
    jobs = list(h.router.channels["q"].jobs)
    assert [(i.headers, i.trace) for i in jobs] == [({"k": 1}, "t1")] * 2
    out = ready_batch(h, W1, ["q"], 10)
    # Not the job's own trace: sent as JOB, which carries trace per job.
    assert job_ids(out, W1) == ["a", "b"] and not of(out, W1, wire.JOB_BATCH)
    assert [h_["trace"] for env in of(out, W1, wire.JOB) for h_, _ in env.items] == ["t1", "t1"]


def test_batch_workers_get_first_deliveries_as_job_batch_and_others_as_job():
    h = Harness(queue_defaults=QueueConfig(retry_base_s=0.0))  # a NACKed job comes back at once
    push_batch(h, P1, "q", "m1", "a", "b", "c")
    out = ready_batch(h, W1, ["q"], 10)
    assert batch_job_ids(out, W1) == ["a", "b", "c"] and not of(out, W1, wire.JOB)
    out = h.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "b", "error": "boom"}))
    (redo,) = of(out, W1, wire.JOB)
    assert [(hd["id"], hd["attempt"], hd["error"]) for hd, _ in redo.items] == [("b", 2, "boom")]
    assert not of(out, W1, wire.JOB_BATCH)
    out = push_batch(h, P1, "q", "m2", "d", "e")
    (env,) = of(out, W1, wire.JOB_BATCH)
    assert env.header["ids"] == ["d", "e"] and env.items == [b"d", b"e"]
    assert env.header["lease_ms"] == int(h.router.config.queue("q").lease_s * 1000)


def test_workers_without_batch_get_job_only():
    h = Harness()
    push_batch(h, P1, "q", "m1", "a", "b")
    out = h.ready(W1, ["q"], 10)
    assert job_ids(out, W1) == ["a", "b"] and not of(out, W1, wire.JOB_BATCH)


def test_job_batch_splits_runs_of_different_headers():
    h = Harness()
    push_batch(h, P1, "q", "m1", "a", "b", headers={"k": 1})
    push_batch(h, P1, "q", "m2", "c")
    out = ready_batch(h, W1, ["q"], 10)
    envs = of(out, W1, wire.JOB_BATCH)
    assert [(e.header["ids"], e.header.get("headers")) for e in envs] == [(["a", "b"], {"k": 1}), (["c"], None)]


def ready_with(h, peer, names, credit, **flags):
    return h.send(peer, codec.pack_control(wire.READY, {"id": "r", "names": names, "credit": credit, **flags}))


def test_push_packed_is_taken_like_push_batch():
    h = Harness()
    out = h.send(
        P1,
        codec.pack_packed(wire.PUSH_PACKED, {"id": "m1", "queue": "q", "ids": ["a", "b"], "trace": "t"}, [b"", b"two"]),
    )
    (confirm,) = of(out, P1, wire.CONFIRM)
    assert confirm.header["batches"] == ["m1"]
    jobs = list(h.router.channels["q"].jobs)
    assert [(i.id, i.body, i.trace) for i in jobs] == [("a", b"", "t"), ("b", b"two", "t")]


def test_packed_workers_get_first_deliveries_as_job_packed():
    h = Harness(queue_defaults=QueueConfig(retry_base_s=0.0))  # a NACKed job comes back at once
    push_batch(h, P1, "q", "m1", "a", "bb", "ccc")
    out = ready_with(h, W1, ["q"], 10, batch=True, packed=True)
    (env,) = of(out, W1, wire.JOB_PACKED)
    assert env.header["ids"] == ["a", "bb", "ccc"] and env.header["sizes"] == [1, 2, 3]
    assert env.items == [b"a", b"bb", b"ccc"] and not of(out, W1, wire.JOB_BATCH) and not of(out, W1, wire.JOB)
    # Retries are not first deliveries: JOB, as for batch workers.
    out = h.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "bb", "error": "boom"}))
    assert job_ids(out, W1) == ["bb"] and not of(out, W1, wire.JOB_PACKED)


def test_a_run_past_the_packed_frame_goes_as_job_batch_or_job():
    big = b"x" * (wire.MAX_PACKED_BYTES // 2 + 1)  # two of these overflow one packed frame
    for flags, expect in (({"batch": True, "packed": True}, wire.JOB_BATCH), ({"packed": True}, wire.JOB)):
        h = Harness()
        h.send(P1, codec.pack_batch(wire.PUSH_BATCH, {"id": "m1", "queue": "q", "ids": ["a", "b"]}, [big, big]))
        out = ready_with(h, W1, ["q"], 10, **flags)
        assert not of(out, W1, wire.JOB_PACKED), flags
        envs = of(out, W1, expect)
        got = [b for env in envs for b in (env.items if expect == wire.JOB_BATCH else [body for _, body in env.items])]
        assert got == [big, big], flags


def test_a_packed_message_weighs_what_its_batch_would_in_the_read_budget():
    # The server reads messages until their weights use up a budget of frames, then dispatches:
    # a packed message of 250 jobs must count as the 252 frames of its batch, not as 3.
    h = Harness()
    header = {"id": "m1", "queue": "q", "ids": ["a", "b", "c"]}
    assert h.router.handle(P1, codec.pack_batch(wire.PUSH_BATCH, header, [b"a", b"b", b"c"]), h.now) == 5
    packed = codec.pack_packed(wire.PUSH_PACKED, {**header, "id": "m2", "ids": ["d", "e", "f"]}, [b"d", b"e", b"f"])
    assert len(packed) == 3 and h.router.handle(P1, packed, h.now) == 5
    assert h.router.handle(P1, codec.pack_item(wire.PUSH, {"id": "g", "queue": "q"}, b"g"), h.now) == 3
    assert h.router.handle(P1, [b"garbage"], h.now) == 1  # refused: its frames


def test_acked_jobs_are_traceable_without_their_bodies():
    from zeromesh.broker.admin import AdminError, run_admin

    h = Harness(trace_history=2)
    push_batch(h, P1, "q", "m1", "a", "b", "c")
    ready_batch(h, W1, ["q"], 10)
    h.send(W1, codec.pack_control(wire.ACK, {"id": "k", "ids": ["a", "b", "c"]}))
    assert run_admin(h.router, "trace", {"id": "c"}, h.now)["state"] == "done"
    assert all(i.body == b"" for i in h.router.ledger.finished)
    with pytest.raises(AdminError, match="no job or request 'a'"):  # the ring keeps only the last two
        run_admin(h.router, "trace", {"id": "a"}, h.now)


def test_ack_in_bulk_and_job_by_job_settle_the_same():
    h = Harness()
    push_batch(h, P1, "q", "m1", "a", "b", "c", "d")
    ready_batch(h, W1, ["q"], 10)
    chan = h.router.channels["q"]
    # All held jobs of one queue: the bulk path.
    h.send(W1, codec.pack_control(wire.ACK, {"id": "k1", "ids": ["a", "b"]}))
    assert (chan.acked, chan.in_flight) == (2, 2)
    # With an unknown id and a repeat: job by job, the strangers counted as late.
    h.send(W1, codec.pack_control(wire.ACK, {"id": "k2", "ids": ["c", "zz", "a"]}))
    assert (chan.acked, chan.in_flight) == (3, 1)
    assert h.router.counters["late_acks"] == 2
    assert set(h.router.ledger.jobs_by_id) == {"d"} and list(h.router.workers[W1].held) == ["d"]
    assert [i.id for i in h.router.ledger.finished] == ["a", "b", "c"]
