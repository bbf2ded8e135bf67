# SPDX-License-Identifier: MIT
"""The router's Redis side without Redis: the commands it hands the link, and what it makes of
the link's results (typed records, played here by the test)."""

from __future__ import annotations

import logging

import pytest

from zeromesh.broker.admin import run_admin
from zeromesh.broker.config import BrokerConfig, ConfigError, QueueConfig, advertised, default_name, load_config
from zeromesh.broker.redis_records import (
    AckJobs,
    AdminAnswer,
    AdminQuery,
    Brokers,
    CheckInflight,
    DeadLetter,
    Fetched,
    FetchJobs,
    InflightUnsure,
    LinkState,
    NameRefused,
    Requeue,
    WriteJobs,
    Written,
)
from zeromesh.broker.redis_registry import Registration
from zeromesh.broker.router import Router
from zeromesh.protocol import codec, envelope, redis_keys as keys, wire

pytestmark = pytest.mark.unit

P1, W1 = b"\x00p1", b"\x00w1"


class Link:
    """A router with Redis configured and up; the test answers its commands."""

    def __init__(self, **config):
        self.now = 100.0
        self.router = Router(BrokerConfig(redis_url="redis://test", **config), "e", logging.getLogger("test"), self.now)
        self.router.on_redis(LinkState(True, "connected"), self.now)

    def send(self, peer, frames):
        self.router.handle(peer, frames, self.now)
        return self.take()

    def result(self, result):
        self.router.on_redis(result, self.now)
        return self.take()

    def take(self):
        self.router.flush(self.now)
        out = [(frames[0], codec.unpack(frames[1:])) for frames in self.router.outbox]
        self.router.outbox.clear()
        return out

    def commands(self):
        return self.router.take_redis_commands()


def of(out, peer, command):
    return [env for p, env in out if p == peer and env.command == command]


def test_a_push_nobody_can_take_is_spilled_and_confirmed_once_written():
    link = Link()
    assert link.send(P1, codec.pack_item(wire.PUSH, {"id": "a", "queue": "q"}, b"A")) == []  # no worker: spill
    (write,) = link.commands()
    assert isinstance(write, WriteJobs) and write.key == keys.queue_key("q")
    assert write.items == [("a", b"A", None, None)]
    # A resend while the write is under way waits for the same confirm.
    assert link.send(P1, codec.pack_item(wire.PUSH, {"id": "a", "queue": "q"}, b"A")) == []
    assert link.commands() == []
    (confirm,) = of(link.result(Written(write.token, [b"el-a"], "")), P1, wire.CONFIRM)
    assert confirm.header["ids"] == ["a"] and not link.router.writes_pending()
    # Spilled, its id is remembered: a resend now is confirmed again and not stored twice.
    out = link.send(P1, codec.pack_item(wire.PUSH, {"id": "a", "queue": "q"}, b"A"))
    assert of(out, P1, wire.CONFIRM)[0].header["ids"] == ["a"] and link.commands() == []
    assert link.router.counters["duplicate_pushes"] == 1


def test_a_failed_write_is_refused_as_unavailable():
    link = Link()
    link.send(P1, codec.pack_item(wire.PUSH, {"id": "a", "queue": "q"}, b"A"))
    (write,) = link.commands()
    (error,) = of(link.result(write.failed("redis is unavailable")), P1, wire.ERROR)
    assert error.header["code"] == wire.E_UNAVAILABLE and error.header["re"] == "a"
    assert not link.router.ledger.writing_ids


def test_fetched_jobs_go_to_workers_and_their_acks_to_redis():
    link = Link()
    link.send(W1, codec.pack_control(wire.READY, {"id": "r", "names": ["q"], "credit": 10}))
    (fetch,) = link.commands()
    assert isinstance(fetch, FetchJobs) and fetch.queue == "q"
    elements = [envelope.encode(jid, jid.encode()) for jid in ("a", "b")]
    out = link.result(Fetched("q", fetch.count, [(el, envelope.decode(el)) for el in elements]))
    assert [h["id"] for env in of(out, W1, wire.JOB) for h, _ in env.items] == ["a", "b"]
    link.commands()  # the next fetch, while the workers have room
    link.send(W1, codec.pack_control(wire.ACK, {"id": "k", "ids": ["a", "b"]}))
    assert link.commands() == [AckJobs("q", elements)]


def test_after_a_lost_answer_the_router_names_the_in_flight_elements_it_holds():
    """Queued, leased and (NACKed) waiting jobs are kept; acked ones are not, their acks going first."""
    link = Link()
    link.send(W1, codec.pack_control(wire.READY, {"id": "r", "names": ["q"], "credit": 2}))
    (fetch,) = link.commands()
    elements = {jid: envelope.encode(jid, jid.encode()) for jid in ("a", "b", "c", "d")}
    link.result(Fetched("q", fetch.count, [(el, envelope.decode(el)) for el in elements.values()]))
    link.commands()
    link.send(W1, codec.pack_control(wire.ACK, {"id": "k", "ids": ["a"]}))  # "b" stays leased, "c" is leased next
    assert link.commands() == [AckJobs("q", [elements["a"]])]
    link.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "b", "error": "later", "retry": True}))
    link.commands()
    link.result(InflightUnsure(["gone", "q"], 7))
    gone, check = link.commands()
    assert gone == CheckInflight("gone", [], 7)
    assert check.queue == "q" and check.round == 7
    assert sorted(check.keep) == sorted(elements[j] for j in ("b", "c", "d"))


def test_a_durable_push_is_stored_in_our_in_flight_list_before_it_is_confirmed():
    link = Link(queues={"d": QueueConfig(durable=True)})
    link.send(W1, codec.pack_control(wire.READY, {"id": "r", "names": ["d"], "credit": 10}))
    link.commands()
    link.send(P1, codec.pack_item(wire.PUSH, {"id": "a", "queue": "d"}, b"A"))
    (write,) = [c for c in link.commands() if isinstance(c, WriteJobs)]
    assert write.key == keys.inflight_key("d", keys.broker_consumer("main"))
    element = envelope.encode("a", b"A")
    out = link.result(Written(write.token, [element], ""))
    assert of(out, P1, wire.CONFIRM)[0].header["ids"] == ["a"]
    assert [h["id"] for env in of(out, W1, wire.JOB) for h, _ in env.items] == ["a"]
    link.send(W1, codec.pack_control(wire.NACK, {"id": "n", "re": "a", "error": "bad", "retry": False}))
    (dead,) = [c for c in link.commands() if isinstance(c, DeadLetter)]
    assert dead.queue == "d" and dead.element == element and envelope.decode(dead.dead).error == "bad"


@pytest.mark.parametrize("with_worker", [False, True], ids=["spilled", "in-flight"])
def test_a_durable_write_short_of_replicas_is_answered_unavailable_and_its_job_kept(with_worker):
    link = Link(queues={"d": QueueConfig(durable=True)})
    if with_worker:
        link.send(W1, codec.pack_control(wire.READY, {"id": "r", "names": ["d"], "credit": 10}))
        link.commands()
    link.send(P1, codec.pack_item(wire.PUSH, {"id": "a", "queue": "d"}, b"A"))
    (write,) = [c for c in link.commands() if isinstance(c, WriteJobs)]
    assert write.durable
    out = link.result(Written(write.token, [envelope.encode("a", b"A")], "", "stored on 0 of 1 replicas within 500 ms"))
    assert of(out, P1, wire.CONFIRM) == []
    (error,) = of(out, P1, wire.ERROR)
    assert error.header["code"] == wire.E_UNAVAILABLE and error.header["re"] == "a"
    assert error.header["message"].startswith("stored on 0 of 1 replicas within 500 ms; the job stays in Redis")
    assert link.router.counters["redis_replicas_short"] == 1
    # The job is in Redis and runs; a resend of its id is confirmed as already held, not stored twice.
    assert [h["id"] for env in of(out, W1, wire.JOB) for h, _ in env.items] == (["a"] if with_worker else [])
    again = link.send(P1, codec.pack_item(wire.PUSH, {"id": "a", "queue": "d"}, b"A"))
    assert of(again, P1, wire.CONFIRM)[0].header["ids"] == ["a"] and link.commands() == []


def test_a_spill_of_a_queue_that_is_not_durable_waits_for_no_replica():
    link = Link()
    link.send(P1, codec.pack_item(wire.PUSH, {"id": "a", "queue": "q"}, b"A"))
    (write,) = link.commands()
    assert not write.durable


def test_status_lists_the_registry_and_a_refused_name_stops_the_broker():
    link = Link(name="east")
    listed = [
        {
            "name": "east",
            "epoch": "e",
            "endpoint": "tcp://h1:5555",
            "pub_endpoint": "tcp://h1:5556",
            "started": 1.0,
            "last_seen": 2.0,
        }
    ]
    link.result(Brokers(listed))
    answer = run_admin(link.router.admin.parts, "status", {}, link.now)
    assert answer["name"] == "east" and answer["brokers"] == listed
    link.result(NameRefused("broker name 'east' is held by another live broker at tcp://h2:5555"))
    assert link.router.state.refused.startswith("broker name 'east'") and not link.router.state.redis_up


@pytest.mark.parametrize(
    "endpoint, pub, name",
    [
        ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556", "main"),
        ("tcp://localhost:7000", "ipc:///tmp/pub", "main"),
        ("tcp://0.0.0.0:5555", "tcp://0.0.0.0:5556", "web1-5555"),
        ("tcp://10.0.0.5:6000", "tcp://127.0.0.1:5556", "web1-6000"),
    ],
)
def test_the_default_broker_name(endpoint, pub, name):
    assert default_name(endpoint, pub, "web1.example.com") == name
    assert load_config(hostname="web1.example.com", endpoint=endpoint, pub_endpoint=pub, insecure=True).name == name
    assert load_config(hostname="web1", endpoint=endpoint, pub_endpoint=pub, name="mine", insecure=True).name == "mine"


def test_advertised_endpoints_default_to_the_bound_ones_with_the_host_name_for_a_wildcard(tmp_path):
    assert advertised("tcp://0.0.0.0:5555", "web1") == "tcp://web1:5555"
    assert advertised("tcp://10.0.0.5:5555", "web1") == "tcp://10.0.0.5:5555"
    config = load_config(hostname="web1", endpoint="tcp://0.0.0.0:5555", pub_endpoint="tcp://*:5556", insecure=True)
    assert (config.advertise, config.advertise_pub) == ("tcp://web1:5555", "tcp://web1:5556")
    path = tmp_path / "b.toml"
    path.write_text('[broker]\nname = "east"\nadvertise = "tcp://lb:1"\nmin_replicas = 0\nredis_wait_ms = 200\n')
    config = load_config(str(path), hostname="web1", endpoint="tcp://0.0.0.0:5555", insecure=True)
    assert (config.name, config.advertise, config.min_replicas, config.redis_wait_ms) == ("east", "tcp://lb:1", 0, 200)
    path.write_text("[broker]\nmin_replicas = -1\n")
    with pytest.raises(ConfigError, match="min_replicas must be 0 or more"):
        load_config(str(path))


def test_a_restarted_broker_takes_over_only_its_own_definite_tcp_endpoint():
    reg = Registration("east", "e2", "tcp://web1:5555", "tcp://web1:5556", 0.0)
    assert reg.can_take_over("tcp://web1:5555")
    assert not reg.can_take_over("tcp://web2:5555")
    assert not Registration("east", "e2", "tcp://0.0.0.0:5555", "", 0.0).can_take_over("tcp://0.0.0.0:5555")
    assert not Registration("east", "e2", "ipc:///tmp/b", "", 0.0).can_take_over("ipc:///tmp/b")


def test_admin_ops_on_redis_are_answered_when_the_link_answers():
    link = Link()
    assert link.send(P1, codec.pack_control(wire.ADMIN, {"id": "s", "op": "purge", "args": {"queue": "q"}})) == []
    (query,) = link.commands()
    assert isinstance(query, AdminQuery) and query.op == "purge"
    ((peer, reply),) = link.result(AdminAnswer(query.token, {"queue": "q", "purged": 3}, None))
    assert peer == P1 and reply.command == wire.REPLY and reply.header["re"] == "s"
    link.send(P1, codec.pack_control(wire.ADMIN, {"id": "t", "op": "purge", "args": {"queue": "q"}}))
    (query,) = link.commands()
    (error,) = of(link.result(query.failed("down")), P1, wire.ERROR)
    assert error.header["code"] == wire.E_UNAVAILABLE and error.header["re"] == "t"


def test_finish_hands_jobs_only_in_memory_back_to_redis():
    link = Link()
    link.router.on_redis(LinkState(False, "gone"), link.now)
    link.send(P1, codec.pack_items(wire.PUSH, [({"id": i, "queue": "q"}, i.encode()) for i in ("a", "b")]))
    assert link.router.finish() == 0
    (requeue,) = link.commands()
    assert isinstance(requeue, Requeue) and [envelope.decode(e).id for e in requeue.elements] == ["a", "b"]
