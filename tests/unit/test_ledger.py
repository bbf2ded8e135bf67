# SPDX-License-Identifier: MIT
"""The ledger's invariants: after any sequence of events every item is in exactly one place,
the indexes follow it, and each channel's in_flight count is what its workers hold."""

from __future__ import annotations

import logging
import random
from collections import Counter

import pytest

from zeromesh.broker.channels import JOB, REQUEST, Channel, Item
from zeromesh.broker.config import BrokerConfig, QueueConfig, ServiceConfig
from zeromesh.broker.ledger import Ledger
from zeromesh.broker.router import Router
from zeromesh.broker.workers import WorkerRecord
from zeromesh.protocol import codec, wire

pytestmark = pytest.mark.unit


def check(router: Router) -> None:
    """Every invariant the ledger promises, read from the router's structures."""
    ledger = router.ledger
    places: dict[int, str] = {}

    def place(item: Item, where: str) -> None:
        assert id(item) not in places, f"{item.id} is {places[id(item)]} and {where}"
        places[id(item)] = where

    held_per_channel: dict[str, int] = {}
    for worker in router.workers.values():
        for jid, item in worker.held.items():
            assert item.id == jid and item.worker is worker, item.id
            place(item, f"held by {worker.tag}")
            held_per_channel[item.channel.name] = held_per_channel.get(item.channel.name, 0) + 1
    for chan in router.channels.values():
        assert chan.in_flight == held_per_channel.get(chan.name, 0), chan.name
        for item in chan.jobs:
            assert item.kind == JOB and item.worker is None and item.channel is chan
            place(item, f"queued in {chan.name}")
        for item in chan.requests:
            assert item.kind == REQUEST and item.worker is None
            if not item.done:  # answered ones wait to be skipped at dispatch: they are nowhere
                place(item, f"waiting in {chan.name}")
        for item in chan.dead:
            assert item.worker is None and ledger.jobs_by_id.get(item.id) is not item
            place(item, f"dead in {chan.name}")
        waiting = ledger.waits.of(chan)
        assert chan.waiting == len(waiting), chan.name
        for item in waiting:
            assert item.kind == JOB and item.worker is None and item.channel is chan
            place(item, f"waiting to retry in {chan.name}")
    jobs = {id(i) for w in router.workers.values() for i in w.held.values() if i.kind == JOB}
    jobs |= {id(i) for c in router.channels.values() for i in c.jobs}
    jobs |= {id(i) for c in router.channels.values() for i in ledger.waits.of(c)}
    assert {id(i) for i in ledger.jobs_by_id.values()} == jobs
    assert all(ledger.jobs_by_id[i.id] is i for c in router.channels.values() for i in c.jobs)
    live = {id(i) for w in router.workers.values() for i in w.held.values() if i.kind == REQUEST and not i.done}
    live |= {id(i) for c in router.channels.values() for i in c.requests if not i.done}
    assert {id(i) for i in ledger.requests_by_id.values()} == live
    for item in ledger.finished:
        assert id(item) not in places and item.worker is None and item.body == b""


P1, P2 = b"\x00p1", b"\x00p2"


class Mesh:
    def __init__(self, **config):
        self.now = 100.0
        log = logging.getLogger("test.ledger")
        log.setLevel(logging.ERROR)  # thousands of dead letters and lost workers: not worth a line each
        self.router = Router(BrokerConfig(**config), "e", log, self.now)
        self.batches: dict[str, list[str]] = {}  # PUSH_BATCH message id -> its job ids
        self.accepted: set[str] = set()  # jobs the broker confirmed

    def send(self, peer: bytes, frames: list[bytes]) -> None:
        self.router.handle(peer, frames, self.now)
        self.take()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.router.expire(self.now)
        self.take()

    def take(self) -> None:
        self.router.flush(self.now)
        for frames in self.router.outbox:
            env = codec.unpack(frames[1:])
            if env.command == wire.CONFIRM:
                self.accepted.update(env.header["ids"])
                for mid in env.header.get("batches", []):
                    self.accepted.update(self.batches[mid])
        self.router.outbox.clear()


def test_random_sequences_keep_every_item_in_exactly_one_place():
    seen: Counter[str] = Counter()
    for seed in range(16):
        rng = random.Random(seed)
        mesh = Mesh(
            heartbeat_s=1.0,
            liveness=3,
            trace_history=100_000,
            queue_defaults=QueueConfig(max_attempts=3, lease_s=2.0, max_depth=60),
            service_defaults=ServiceConfig(max_attempts=2),
        )
        workers = [b"\x00w%d" % i for i in range(4)]
        pushed: set[str] = set()
        counter = 0
        for _step in range(300):
            counter += 1
            kind = rng.randrange(14)
            names = rng.sample(["q", "r", "s"], rng.randint(1, 2))
            w = rng.choice(workers)
            record = mesh.router.workers.get(w)
            held = list(record.held) if record else []
            if kind == 0:
                ids = [f"j{counter}-{i}" for i in range(rng.randint(1, 5))]
                mesh.send(P1, codec.pack_items(wire.PUSH, [({"id": i, "queue": rng.choice("qr")}, b"x") for i in ids]))
                pushed.update(ids)
            elif kind == 1:
                ids = [f"b{counter}-{i}" for i in range(rng.randint(1, 8))]
                if rng.random() < 0.2 and pushed:
                    ids.append(rng.choice(sorted(pushed)))  # a resend: job by job
                mesh.batches[f"m{counter}"] = ids
                mesh.send(
                    P1,
                    codec.pack_batch(
                        wire.PUSH_BATCH, {"id": f"m{counter}", "queue": "q", "ids": ids}, [b"y"] * len(ids)
                    ),
                )
                pushed.update(ids)
            elif kind == 2:
                mesh.send(
                    w,
                    codec.pack_control(
                        wire.READY,
                        {"id": "r", "names": names, "credit": rng.randint(1, 6), "batch": rng.random() < 0.5},
                    ),
                )
            elif kind == 3 and held:
                acked = rng.sample(held, rng.randint(1, len(held))) + (["nope"] if rng.random() < 0.2 else [])
                mesh.send(w, codec.pack_control(wire.ACK, {"id": "a", "ids": acked}))
            elif kind == 4 and held:
                mesh.send(
                    w,
                    codec.pack_control(
                        wire.NACK, {"id": "n", "re": rng.choice(held), "error": "boom", "retry": rng.random() < 0.7}
                    ),
                )
            elif kind == 5 and held:
                mesh.send(w, codec.pack_control(wire.EXTEND, {"id": "x", "ids": held, "lease_ms": 3000}))
            elif kind == 6 and record:
                mesh.send(w, codec.pack_control(wire.CREDIT, {"id": "c", "credit": rng.randint(0, 6)}))
            elif kind == 7 and record:
                mesh.send(w, codec.pack_control(wire.DISCONNECT, {"id": "d"}))
            elif kind == 8:
                mesh.send(
                    rng.choice((P1, P2)),
                    codec.pack_item(
                        wire.REQUEST,
                        {
                            "id": f"r{counter}",
                            "service": rng.choice("rs"),
                            "timeout_ms": rng.randint(100, 4000),
                            "wait": rng.random() < 0.7,
                        },
                        b"q",
                    ),
                )
            elif kind == 9 and held:
                items = [({"id": f"y{counter}", "re": re}, b"a") for re in rng.sample(held, rng.randint(1, len(held)))]
                mesh.send(w, codec.pack_items(wire.REPLY, items))
            elif kind == 10 and held:
                mesh.send(
                    w,
                    codec.pack_control(
                        wire.ERROR, {"id": "e", "re": rng.choice(held), "code": "x", "message": "failed"}
                    ),
                )
            elif kind == 11 and mesh.router.ledger.requests_by_id:
                item = rng.choice(list(mesh.router.ledger.requests_by_id.values()))
                mesh.send(item.client, codec.pack_control(wire.CANCEL, {"id": "k", "re": item.id}))
            elif kind == 12:
                # Time passes; a worker that beats stays, the others may be dropped.
                for beat in rng.sample(workers, 2):
                    if beat in mesh.router.workers:
                        mesh.send(beat, codec.pack_control(wire.HEARTBEAT, {"id": "h"}))
                mesh.advance(rng.choice((0.3, 1.1, 2.5)))
            elif kind == 13:
                from zeromesh.broker.admin import run_admin

                if "q" in mesh.router.channels:
                    run_admin(mesh.router, "replay", {"queue": "q"}, mesh.now)
                    mesh.take()
            check(mesh.router)
        # Conservation: every job the broker confirmed is queued, held, dead or acked.
        ledger = mesh.router.ledger
        accounted = set(ledger.jobs_by_id) | {i.id for c in mesh.router.channels.values() for i in c.dead}
        accounted |= {i.id for i in ledger.finished if i.kind == JOB and i.outcome == "done"}
        assert accounted == mesh.accepted, seed
        assert mesh.accepted < pushed, seed  # some were refused (queue full): they must not be anywhere
        seen.update(mesh.router.counters)
        seen["acked"] += sum(c.acked for c in mesh.router.channels.values())
        seen["answered"] += sum(c.answered for c in mesh.router.channels.values())
    # The sequences reached every transition the ledger has.
    for event in (
        "acked",
        "answered",
        "dead_lettered",
        "lease_expired",
        "workers_lost",
        "request_timeouts",
        "cancelled",
        "late_replies",
        "late_acks",
        "duplicate_pushes",
        "queue_full",
    ):
        assert seen[event] > 0, event


def _chan(name: str = "q", **qconf) -> Channel:
    config = BrokerConfig(queue_defaults=QueueConfig(**qconf))
    return Channel(name, config.queue(name), config.service(name))


def _jobs(chan: Channel, *ids: str) -> list[Item]:
    return [Item(JOB, i, chan, i.encode(), None, i, None, 0.0) for i in ids]


def test_bulk_and_single_ack_settle_alike():
    ledger = Ledger(100)
    chan = _chan()
    worker = WorkerRecord(b"w", 0.0)
    ledger.queue_jobs(chan, _jobs(chan, "a", "b", "c", "d"))
    ledger.lease_jobs(worker, chan, 4, 1.0)
    assert (chan.in_flight, list(worker.held)) == (4, ["a", "b", "c", "d"])
    assert ledger.ack_jobs(worker, ["a", "b"], 2.0) == 0  # the bulk path
    assert ledger.ack_jobs(worker, ["c", "zz", "a"], 2.0) == 2  # job by job: two are late
    assert (chan.in_flight, chan.acked, list(worker.held), set(ledger.jobs_by_id)) == (1, 3, ["d"], {"d"})
    assert [i.outcome for i in ledger.finished] == ["done"] * 3


def test_acked_jobs_with_a_redis_element_leave_it_to_be_removed():
    ledger = Ledger(100)
    chan = _chan()
    worker = WorkerRecord(b"w", 0.0)
    (item,) = _jobs(chan, "a")
    item.elem = b"element-a"
    ledger.queue_jobs(chan, [item], pushed=False)
    ledger.lease_jobs(worker, chan, 1, 1.0)
    ledger.ack_jobs(worker, ["a"], 2.0)
    assert ledger.take_acked_elements() == {"q": [b"element-a"]} and ledger.acked_elements == {}
    assert chan.enqueued == 0 and item.elem is None


def test_nack_retries_at_the_head_then_dead_letters_through_the_hook():
    told = []
    ledger = Ledger(100, on_dead=lambda item: told.append((item.id, item.body)))
    chan = _chan(max_attempts=2)
    worker = WorkerRecord(b"w", 0.0)
    ledger.queue_jobs(chan, _jobs(chan, "a", "b"))
    ledger.lease_jobs(worker, chan, 1, 1.0)
    ledger.nack_job(worker, ledger.jobs_by_id["a"], "boom", True, 2.0)
    assert [i.id for i in chan.jobs] == ["a", "b"] and chan.in_flight == 0
    ledger.lease_jobs(worker, chan, 1, 3.0)
    ledger.nack_job(worker, ledger.jobs_by_id["a"], "boom again", True, 4.0)
    assert told == [("a", b"a")]  # told before the body is dropped
    assert [i.id for i in chan.dead] == ["a"] and "a" not in ledger.jobs_by_id and chan.nacked == 2


def test_dead_letters_in_redis_are_finished_here():
    ledger = Ledger(100, dead_in_redis=True)
    chan = _chan()
    worker = WorkerRecord(b"w", 0.0)
    ledger.queue_jobs(chan, _jobs(chan, "a"))
    ledger.lease_jobs(worker, chan, 1, 1.0)
    ledger.nack_job(worker, ledger.jobs_by_id["a"], "bad", False, 2.0)
    assert not chan.dead and [(i.id, i.outcome) for i in ledger.finished] == [("a", "dead_letter")]


def test_lease_expiry_returns_only_expired_jobs():
    ledger = Ledger(100)
    chan = _chan(lease_s=5.0)
    worker = WorkerRecord(b"w", 0.0)
    ledger.queue_jobs(chan, _jobs(chan, "a", "b"))
    ledger.lease_jobs(worker, chan, 2, 0.0)
    ledger.extend_leases(worker, ["a"], 20.0)
    (expired,) = ledger.expired_leases(worker, 6.0)
    assert expired.id == "b"
    ledger.expire_lease(worker, expired, "lease expired", 6.0)
    assert list(worker.held) == ["a"] and [i.id for i in chan.jobs] == ["b"] and "lease expired" in chan.jobs[0].error


def test_a_departing_worker_hands_back_in_order_and_fails_what_cannot_wait():
    ledger = Ledger(100)
    config = BrokerConfig(service_defaults=ServiceConfig(max_attempts=1))
    chan = Channel("s", config.queue("s"), config.service("s"))
    worker = WorkerRecord(b"w", 0.0)
    ledger.queue_jobs(chan, _jobs(chan, "a", "b"))
    ledger.lease_jobs(worker, chan, 2, 0.0)
    for rid, deadline in (("r1", 10.0), ("r2", 0.5)):
        ledger.queue_request(chan, Item(REQUEST, rid, chan, b"", None, rid, b"c", 0.0, deadline))
        ledger.lease_request(worker, chan, 0.0)
    released = ledger.release_worker(worker, 1.0, handback=True, reason="bye")
    # Handed back: no attempt counted; r2 is past its deadline and fails.
    assert released.held == 4 and [i.id for i in released.failed] == ["r2"] and released.channels == {chan}
    assert [(i.id, i.attempt) for i in chan.jobs] == [("a", 0), ("b", 0)]
    assert [i.id for i in chan.requests] == ["r1"] and set(ledger.requests_by_id) == {"r1"}
    assert chan.in_flight == 0 and not worker.held


def test_expired_requests_are_answered_once_and_stale_deadlines_never_wake_the_loop():
    ledger = Ledger(100)
    chan = _chan()
    for rid, deadline in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        ledger.queue_request(chan, Item(REQUEST, rid, chan, b"", None, rid, b"c", 0.0, deadline))
    ledger.cancel_request(ledger.requests_by_id["a"])
    assert ledger.next_deadline() == 2.0
    assert [i.id for i in ledger.expire_requests(2.5)] == ["b"]
    assert set(ledger.requests_by_id) == {"c"} and ledger.expire_requests(2.5) == []
    assert [i.id for i in ledger.fail_all_requests()] == ["c"] and not ledger.requests_by_id


def test_spilled_ids_are_known_until_forgotten_and_fetched_duplicates_are_refused():
    ledger = Ledger(100)
    chan = _chan()
    ledger.spilled(chan, ["a", "b"], 1.0)
    ledger.spilled(chan, ["c"], 5.0)
    assert ledger.knows_job("a") and not ledger.all_new(["x", "c"]) and ledger.all_new(["x"])
    ledger.forget_spilled(2.0)
    assert not ledger.knows_job("a") and ledger.knows_job("c")
    ledger.queue_jobs(chan, _jobs(chan, "d"))
    fetched = _jobs(chan, "c", "d")
    for item in fetched:
        item.elem = b"el-" + item.id.encode()
    duplicates = ledger.fetched(chan, fetched)
    assert [i.id for i in duplicates] == ["d"] and ledger.acked_elements == {"q": [b"el-d"]}
    assert [i.id for i in chan.jobs] == ["d", "c"] and not ledger.knows_job("x") and "c" not in ledger.spilled_ids
