# SPDX-License-Identifier: MIT
"""The Python client under CURVE against a real secured broker: every verb with a key that
may use it (thread and green clients), refused handshakes reported quickly by Client, Worker
and Subscription (no key, an unknown key, a wrong server key, a removed key), and commands
outside a key's roles answered with ForbiddenError and changing nothing."""

from __future__ import annotations

import logging
import signal
import threading
import time

import gevent
import pytest
import zmq

import zeromesh
from zeromesh import AuthenticationError, DeadLetter, ForbiddenError, Job, Worker

from ..conftest import scaled, wait_until
from ..curve_keys import KeySet

pytestmark = pytest.mark.timeout(90)

REFUSAL_S = 2.0
"""A refused handshake must be reported within this (the brief's "within ~2 s")."""

WRONG_SERVER_KEY = zmq.curve_keypair()[0].decode()


@pytest.fixture
def keys(tmp_path):
    return KeySet(tmp_path / "keys")


@pytest.fixture
def secure_broker(broker_factory, keys):
    return broker_factory(args=keys.broker_args(), curve=keys.curve("everything"))


def curve(keys: KeySet, name: str) -> dict:
    return {"curve_server": str(keys.broker_public), "curve_secret": keys.secret(name)}


def client(broker, keys, name: str | None, green: bool = False, **kw) -> zeromesh.Client:
    settings = curve(keys, name) if name else {}
    return zeromesh.Client(broker.endpoint, broker.pub_endpoint, green=green, **settings, **kw)


def start_worker(broker, keys, name: str, handlers: dict, **kw) -> Worker:
    worker = Worker(broker.endpoint, concurrency=2, **curve(keys, name), **kw)
    for queue, fn in handlers.items():
        worker.handler(queue)(fn)
    return worker.start()


def doomed(job: Job) -> None:
    raise DeadLetter("never works")


@pytest.fixture
def served(secure_broker, keys):
    """A worker with the worker key serving queue `jobs` (recording bodies), service `echo` and the
    queue `doomed` (every job goes to the dead letters)."""
    seen: list[bytes] = []
    worker = start_worker(
        secure_broker,
        keys,
        "worker",
        {"jobs": lambda job: seen.append(job.body), "echo": lambda job: job.body, "doomed": doomed},
    )
    assert worker.wait_ready(scaled(5))
    yield seen
    worker.stop(grace=1)


def in_mode(green: bool, fn):
    """Run fn() in a greenlet of this thread's hub (green clients), or directly."""
    if not green:
        return fn()
    return gevent.spawn(fn).get(timeout=scaled(30))


@pytest.mark.parametrize("green", [False, True], ids=["threads", "green"])
def test_every_verb_works_with_keys_that_allow_it(secure_broker, keys, served, green):
    def scenario():
        with (
            client(secure_broker, keys, "producer", green) as producer,
            client(secure_broker, keys, "admin", green) as admin,
            client(secure_broker, keys, "subscriber", green) as listener,
        ):
            producer.push("jobs", b"one")
            producer.push_many("jobs", [b"two", b"three"])
            wait_until(lambda: len(served) == 3, scaled(5), message="the worker ran the pushed jobs")
            assert sorted(served) == [b"one", b"three", b"two"]
            assert producer.request("echo", b"ping", timeout=5) == b"ping"
            with listener.subscribe("news") as sub:
                # The slow joiner: publish until the first event arrives.
                deadline = time.monotonic() + scaled(5)
                event = None
                while event is None and time.monotonic() < deadline:
                    producer.publish("news.today", b"hello")
                    event = sub.next(timeout=0.1)
                assert event is not None and event.body == b"hello"
            producer.push("doomed", b"x")
            wait_until(lambda: admin.dead_letters("doomed"), scaled(5), message="a dead letter")
            assert "queues" in admin.status()
            assert admin.replay("doomed") == 1
            wait_until(lambda: admin.dead_letters("doomed"), scaled(5), message="the replayed job dead again")
            assert admin.purge("doomed") == 1
            assert admin.dead_letters("doomed") == []

    in_mode(green, scenario)


@pytest.mark.parametrize("green", [False, True], ids=["threads", "green"])
@pytest.mark.parametrize(
    "who,why",
    [("none", "handshake failed"), ("stranger", "key not allowed"), ("wrong-server", "handshake failed")],
)
def test_a_refused_client_raises_authentication_error_quickly(secure_broker, keys, green, who, why):
    settings: dict = {}
    if who == "stranger":
        settings = {"curve_server": str(keys.broker_public), "curve_secret": keys.stranger()}
    elif who == "wrong-server":
        settings = {"curve_server": WRONG_SERVER_KEY, "curve_secret": keys.secret("producer")}

    def scenario():
        with zeromesh.Client(secure_broker.endpoint, green=green, connect_timeout=30, **settings) as c:
            for call in (
                lambda: c.push("jobs", b"x", timeout=30),
                lambda: c.request("echo", b"x", timeout=30),
                c.status,
            ):
                started = time.monotonic()
                with pytest.raises(AuthenticationError) as caught:
                    call()
                assert time.monotonic() - started < scaled(REFUSAL_S)
                message = str(caught.value)
                assert message.startswith(f"authentication refused by the broker at {secure_broker.endpoint}: ")
                assert why in message
                assert isinstance(caught.value, PermissionError) and isinstance(caught.value, zeromesh.ZeromeshError)

    in_mode(green, scenario)


def test_with_several_brokers_a_refusing_one_is_skipped_and_all_refusing_raises(broker_factory, keys, tmp_path):
    secured = broker_factory(args=[*keys.broker_args(), "--name", "b0"], curve=keys.curve("everything"))
    other_keys = KeySet(tmp_path / "other-keys")  # a second broker that knows none of our keys
    stranger = broker_factory(args=[*other_keys.broker_args(), "--name", "b1"], curve=other_keys.curve("everything"))
    both = f"{stranger.endpoint},{secured.endpoint}"
    server = f"{other_keys.broker_public},{keys.broker_public}"
    for _ in range(3):  # the start is random: whichever comes first, the call ends on the one that knows us
        with zeromesh.Client(both, green=False, curve_server=server, curve_secret=keys.secret("producer")) as c:
            started = time.monotonic()
            c.push("jobs", b"x", timeout=10)
            assert time.monotonic() - started < scaled(REFUSAL_S)
    for _ in range(10):  # an admin op too: a refusing broker never had it, so it goes to the next one
        with zeromesh.Client(both, green=False, curve_server=server, curve_secret=keys.secret("admin")) as c:
            assert c.status()["name"] == "b0"
    with zeromesh.Client(both, green=False, curve_server=server, curve_secret=keys.stranger()) as c:
        started = time.monotonic()
        with pytest.raises(AuthenticationError, match="^authentication refused by the broker at tcp://"):
            c.push("jobs", b"x", timeout=30)
        assert time.monotonic() - started < scaled(REFUSAL_S)


def reload_keys(broker, change) -> None:
    """Change the clients directory and wait until the broker has read it again."""
    loads = broker.log().count("client keys ")
    change()
    broker.proc.send_signal(signal.SIGHUP)  # reload now rather than at the next check
    wait_until(lambda: broker.log().count("client keys ") > loads, scaled(5), message="a key reload")


def test_a_removed_key_is_refused_on_its_next_call_and_at_its_next_handshake(secure_broker, keys):
    reload_keys(secure_broker, lambda: keys.add("temporary", "producer"))
    with client(secure_broker, keys, "temporary") as c:
        c.push("jobs", b"before")
        reload_keys(secure_broker, lambda: keys.remove("temporary"))
        started = time.monotonic()
        with pytest.raises((ForbiddenError, AuthenticationError)) as caught:
            c.push("jobs", b"after", timeout=30)
        assert time.monotonic() - started < scaled(REFUSAL_S)
        if isinstance(caught.value, ForbiddenError):
            assert caught.value.code == "forbidden" and "temporary" in caught.value.message
    with client(secure_broker, keys, "temporary") as fresh:
        with pytest.raises(AuthenticationError, match="key not allowed"):
            fresh.push("jobs", b"again", timeout=30)


def test_a_refused_worker_logs_once_keeps_trying_and_run_raises(secure_broker, keys, caplog):
    worker = Worker(
        secure_broker.endpoint,
        curve_server=str(keys.broker_public),
        curve_secret=keys.stranger(),
        connect_timeout=0.5,
    )
    worker.handler("jobs")(lambda job: None)
    outcome: list[BaseException] = []

    def run():
        try:
            worker.run()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(exc)

    caplog.set_level(logging.ERROR, logger="zeromesh.worker")
    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(scaled(10))
    assert not thread.is_alive(), "run() must raise, not hang"
    assert time.monotonic() - started < scaled(REFUSAL_S + 1)
    assert len(outcome) == 1 and isinstance(outcome[0], AuthenticationError), outcome
    assert str(outcome[0]).startswith(
        f"authentication refused by the broker at {secure_broker.endpoint}: key not allowed"
    )
    refusals = [r for r in caplog.records if "authentication refused" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]


def test_a_worker_whose_ready_is_forbidden_raises_from_run(secure_broker, keys, caplog):
    worker = Worker(secure_broker.endpoint, **curve(keys, "producer"))
    worker.handler("jobs")(lambda job: None)
    caplog.set_level(logging.ERROR, logger="zeromesh.worker")
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: _record(worker.run, outcome), daemon=True)
    thread.start()
    thread.join(scaled(10))
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ForbiddenError), outcome
    assert outcome[0].code == "forbidden" and "may not send READY" in str(outcome[0])
    assert any("may not send READY" in r.getMessage() for r in caplog.records)


def _record(fn, outcome: list) -> None:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
        outcome.append(exc)


@pytest.mark.parametrize("green", [False, True], ids=["threads", "green"])
@pytest.mark.parametrize("who", ["none", "producer"])
def test_a_refused_subscriber_logs_and_raises_from_its_next_receive(secure_broker, keys, caplog, green, who):
    caplog.set_level(logging.ERROR, logger="zeromesh.client")

    def scenario():
        c = client(secure_broker, keys, None if who == "none" else who, green)
        try:
            with c.subscribe("news") as sub:
                started = time.monotonic()
                why = "handshake failed" if who == "none" else "key not allowed"  # producer: not a subscriber
                with pytest.raises(AuthenticationError, match=f"^authentication refused by the broker at .*: {why}"):
                    sub.next(timeout=30)
                assert time.monotonic() - started < scaled(REFUSAL_S)
        finally:
            c.close()

    in_mode(green, scenario)
    assert any(secure_broker.pub_endpoint in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_forbidden_commands_raise_and_change_nothing(secure_broker, keys, served):
    with client(secure_broker, keys, "producer") as producer, client(secure_broker, keys, "admin") as admin:
        producer.push("doomed", b"x")
        wait_until(lambda: admin.dead_letters("doomed"), scaled(5), message="a dead letter")
        before = admin.status()["counters"].get("forbidden", 0)
        with pytest.raises(ForbiddenError) as caught:
            producer.purge("doomed")
        assert caught.value.code == "forbidden" and "key producer may not send ADMIN" in caught.value.message
        assert len(admin.dead_letters("doomed")) == 1  # not purged
        with client(secure_broker, keys, "orders-producer") as narrow:
            narrow.push("orders.eu", b"fine")
            with pytest.raises(ForbiddenError, match="may not send PUSH(_PACKED)? for 'mail'"):
                narrow.push("mail", b"no")
            with pytest.raises(ForbiddenError, match="may not send PUSH(_PACKED)? for 'mail'"):
                narrow.push_many("mail", [b"a", b"b"])
        assert "mail" not in admin.status()["queues"]
        # A worker key publishing: the event reaches no subscriber (a producer's does), and is counted.
        with client(secure_broker, keys, "worker") as worker_key, client(secure_broker, keys, "subscriber") as listener:
            with listener.subscribe("cache") as sub:
                deadline = time.monotonic() + scaled(5)
                got = None
                while got is None and time.monotonic() < deadline:
                    worker_key.publish("cache", b"from-worker")
                    producer.publish("cache", b"from-producer")
                    got = sub.next(timeout=0.1)
                assert got is not None
                while got is not None:
                    assert got.body == b"from-producer"
                    got = sub.next(timeout=0.2)
        after = admin.status()["counters"]["forbidden"]
        assert after >= before + 4, (before, after)
