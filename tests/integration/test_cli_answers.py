# SPDX-License-Identifier: MIT
"""The `zeromesh` verbs say what really happened: with the broker up, and with it unreachable."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from importlib.metadata import version

import msgpack
import pytest
import zmq

from zeromesh import Client
from zeromesh.nodes import names
from zeromesh.protocol import codec, wire

from ..conftest import ROOT, free_port, scaled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PARTLY_DONE = 4


def run_zm(env: dict, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zeromesh", *args], env=env, capture_output=True, timeout=scaled(timeout)
    )


def start_zm(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "zeromesh", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def nobody_env(redis_url: str) -> tuple[dict, str]:
    """An environment whose broker endpoint has nothing listening."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = dict(
        os.environ,
        ZEROMESH_BROKER=endpoint,
        ZEROMESH_PUB=f"tcp://127.0.0.1:{free_port()}",
        ZEROMESH_REDIS_URL=redis_url,
    )
    return env, endpoint


def subscribed(client: Client, *prefixes: str):
    """A subscription to prefixes that has seen a probe event, so it misses nothing published after."""
    sub = client.subscribe("cli-probe.", *prefixes)
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        client.publish("cli-probe.x", b"")
        event = sub.next(0.1)
        if event is not None and event.topic == "cli-probe.x":
            return sub
    raise AssertionError("the subscription never received a probe")


def next_event(sub, topic: str):
    deadline = time.monotonic() + scaled(5)
    while time.monotonic() < deadline:
        event = sub.next(0.2)
        if event is not None and event.topic == topic:
            return event
    raise AssertionError(f"no event on {topic}")


def test_with_the_broker_unreachable_nothing_claims_success(redis_server):
    """publish and invalidate print no id; feature says the switch is in Redis but was not announced."""
    redis_server.flush()
    env, endpoint = nobody_env(redis_server.url)
    off_env = dict(env, ZEROMESH_REDIS_URL="none")
    procs = {
        "publish": start_zm(env, "publish", "news", "hello"),
        "invalidate": start_zm(env, "invalidate", "--tag", "card:1", "--path", "/cards"),
        "feature": start_zm(env, "feature", "off", "ads"),
        "feature-no-redis": start_zm(off_env, "feature", "on", "reco"),
    }
    out = {name: (p.communicate(timeout=scaled(30)), p.returncode) for name, p in procs.items()}

    (stdout, stderr), rc = out["publish"]
    assert rc != 0 and stdout == b"", (rc, stdout)
    assert b"not published" in stderr and endpoint.encode() in stderr, stderr

    (stdout, stderr), rc = out["invalidate"]
    assert rc != 0 and stdout == b"", (rc, stdout)
    assert b"2 invalidation(s) not published" in stderr and endpoint.encode() in stderr, stderr

    (stdout, stderr), rc = out["feature"]
    assert rc == PARTLY_DONE, (rc, stdout, stderr)
    assert stdout.decode().strip() == "feature ads off: written to Redis, not announced"
    assert b"not announced" in stderr and endpoint.encode() in stderr and b"within 30 s" in stderr, stderr
    assert redis_server.client().hget(names.FEATURES_KEY, "ads") == b"off"  # the switch did take effect

    (stdout, stderr), rc = out["feature-no-redis"]  # neither kept nor announced: nothing happened
    assert rc == 1 and stdout == b"", (rc, stdout)
    assert b"feature reco on NOT switched" in stderr and b"ZEROMESH_REDIS_URL=none" in stderr, stderr
    assert redis_server.client().hget(names.FEATURES_KEY, "reco") is None


def test_with_the_broker_up_each_verb_prints_what_the_broker_took(broker, redis_server):
    with Client(broker.endpoint, broker.pub_endpoint, green=False) as client:
        sub = subscribed(client, "news", names.INVALIDATE_PREFIX, names.FEATURE_TOPIC)

        out = run_zm(broker.env, "publish", "news", "hello")
        assert out.returncode == 0, out.stderr
        event = next_event(sub, "news")
        assert out.stdout.decode() == event.id + "\n" and event.body == b"hello"

        out = run_zm(broker.env, "invalidate", "--path", "/cards")
        assert out.returncode == 0, out.stderr
        event = next_event(sub, names.INVALIDATE_PATH)
        assert out.stdout.decode() == f"{names.INVALIDATE_PATH} /cards {event.id}\n"

        out = run_zm(broker.env, "feature", "off", "ads")
        assert (out.returncode, out.stdout) == (0, b"feature ads off: written to Redis and announced\n"), out
        assert json.loads(next_event(sub, names.FEATURE_TOPIC).body) == {"name": "ads", "on": False}
        assert redis_server.client().hget(names.FEATURES_KEY, "ads") == b"off"

        out = run_zm(dict(broker.env, ZEROMESH_REDIS_URL="none"), "feature", "on", "ads")
        assert out.returncode == PARTLY_DONE, out
        assert out.stdout == b"feature ads on: announced, not written to Redis\n"
        assert b"processes started later" in out.stderr
        assert json.loads(next_event(sub, names.FEATURE_TOPIC).body) == {"name": "ads", "on": True}
        assert redis_server.client().hget(names.FEATURES_KEY, "ads") == b"off"  # not written
        sub.close()


def test_a_negative_credit_is_refused_saying_what_is_wrong(broker, zsocket):
    sock = zsocket(zmq.DEALER)
    sock.connect(broker.endpoint)
    command_frame = codec.pack_control(wire.READY, {"id": "r1", "names": ["q"], "credit": 1})[0]
    sock.send_multipart([command_frame, msgpack.packb({"id": "r1", "names": ["q"], "credit": -1})])
    assert sock.poll(scaled(5) * 1000), "no answer from the broker"
    env = codec.unpack(sock.recv_multipart())
    assert env.command == wire.ERROR and env.header["code"] == wire.E_BAD_HEADER, env.header
    assert env.header["message"] == "'credit' must be an int >= 0, got -1"


def read_pty(fd: int, proc: subprocess.Popen) -> bytes:
    """All a child wrote to the terminal whose master end is fd, once it exited."""
    data = b""
    deadline = time.monotonic() + scaled(20)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    return data


@pytest.mark.parametrize(("body", "shown"), [("hi", b"hi\r\n"), ("two\n", b"two\r\n")])
def test_request_ends_the_reply_with_a_newline_on_a_terminal_only(broker, start_worker, body, shown):
    start_worker(broker.endpoint, {"echo": lambda job: job.body})
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zeromesh", "request", "echo", body],
            env=broker.env,
            stdout=slave,
            stderr=subprocess.PIPE,
        )
        os.close(slave)
        out = read_pty(master, proc)
        assert proc.wait(timeout=scaled(20)) == 0, proc.stderr.read()
        proc.stderr.close()
    finally:
        os.close(master)
    assert out == shown  # the terminal shows "\n" as "\r\n"
    piped = run_zm(broker.env, "request", "echo", body)
    assert (piped.returncode, piped.stdout) == (0, body.encode())  # byte for byte into a pipe


def test_status_tells_queues_from_services_and_shows_the_counters(broker_factory, start_worker):
    broker = broker_factory(config_text="[queues.orders]\nmax_attempts = 3\n[services.pricing]\nmax_pending = 9\n")
    start_worker(
        broker.endpoint,
        {
            "send": lambda job: None,
            "echo": lambda job: job.body,
            "orders": lambda job: None,
            "pricing": lambda job: b"1",
        },
    )
    first = json.loads(run_zm(broker.env, "status", "--json").stdout)
    assert set(first["unused"]) == {"send", "echo"}, first  # a worker serves them; nothing says which kind
    assert "send" not in first["services"] and "send" not in first["queues"]
    assert "orders" in first["queues"] and "orders" not in first["services"]  # the config says so
    assert "pricing" in first["services"] and "pricing" not in first["queues"]

    assert run_zm(broker.env, "push", "send", "a card").returncode == 0
    assert run_zm(broker.env, "request", "echo", "x").returncode == 0
    assert run_zm(broker.env, "publish", "news", "x").returncode == 0
    status = json.loads(run_zm(broker.env, "status", "--json").stdout)
    assert "send" in status["queues"] and "send" not in status["services"]
    assert "echo" in status["services"] and "echo" not in status["queues"]
    assert status["unused"] == {} and status["counters"]["published"] >= 1

    text = run_zm(broker.env, "status")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.decode().splitlines()
    services = lines[lines.index(next(line for line in lines if line.startswith("SERVICE"))) :]
    services = services[: services.index("")]
    assert [line.split()[0] for line in services[1:]] == ["echo", "pricing"]
    counters = lines[lines.index(next(line for line in lines if line.startswith("COUNTER"))) + 1 :]
    assert {line.split()[0]: int(line.split()[1]) for line in counters}["published"] == status["counters"]["published"]


def test_version_and_the_config_pointer(broker):
    out = run_zm(broker.env, "--version")
    assert (out.returncode, out.stdout.decode()) == (0, f"zeromesh {version('zeromesh')}\n"), out
    out = run_zm(broker.env, "broker", "--help")
    assert out.returncode == 0 and b"docs/CONFIG.md" in out.stdout
    assert (ROOT / "docs" / "CONFIG.md").is_file()


def test_the_config_file_sets_what_no_variable_or_flag_overrides(tmp_path):
    port = free_port()
    config = tmp_path / "broker.toml"
    config.write_text(
        f'[broker]\nendpoint = "tcp://127.0.0.1:{port}"\npub_endpoint = "tcp://127.0.0.1:{free_port()}"\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ZEROMESH_BROKER", "ZEROMESH_PUB")}
    env["ZEROMESH_REDIS_URL"] = "none"
    proc = subprocess.Popen(
        [sys.executable, "-m", "zeromesh", "broker", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with Client(f"tcp://127.0.0.1:{port}", green=False) as client:
            wait_until(lambda: _answers(client), 10, message="the broker on the file's endpoint")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=scaled(15))
    assert proc.returncode == 0, out
    assert f"clients and workers on tcp://127.0.0.1:{port}".encode() in out


def _answers(client: Client) -> bool:
    try:
        client.ping(timeout=0.5)
        return True
    except Exception:
        return False
