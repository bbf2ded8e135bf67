# SPDX-License-Identifier: MIT
"""What a client promises at its edges: close delivers what was sent, an absent broker is
reported within about a second, and a failed push_many says which jobs to send again."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

import zeromesh

from ..conftest import free_port, scaled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PUBLISH_AND_EXIT = textwrap.dedent("""
    import sys
    from zeromesh import Client
    endpoint, topic, n, linger, green = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    if green == "green":
        from gevent import monkey
        monkey.patch_all()
    with Client(endpoint, linger=linger) as c:
        for i in range(n):
            c.publish(topic, str(i).encode())
""")


def _subscribed(client: zeromesh.Client, topic: str):
    """A subscription that has surely joined: probes are published until one arrives."""
    sub = client.subscribe(topic)
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        client.publish(topic + ".probe", b"probe")
        event = sub.next(timeout=0.1)
        if event is not None and event.topic.endswith(".probe"):
            return sub
    raise AssertionError("the subscription never received a probe")


def _publish_from_a_process(endpoint: str, topic: str, n: int, linger: float, mode: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PUBLISH_AND_EXIT, endpoint, topic, str(n), str(linger), mode],
        capture_output=True,
        text=True,
        timeout=scaled(30),
    )
    assert out.returncode == 0, out.stderr


def _count(sub, topic: str, n: int) -> int:
    got = set()
    deadline = time.monotonic() + scaled(5)
    while len(got) < n and time.monotonic() < deadline:
        event = sub.next(timeout=0.2)
        if event is not None and event.topic == topic:
            got.add(event.body)
    return len(got)


@pytest.mark.parametrize("mode,n", [("threads", 1), ("threads", 100), ("green", 10)])
def test_a_process_that_publishes_and_exits_delivers_every_event(broker, mode, n):
    with zeromesh.Client(broker.endpoint, broker.pub_endpoint, green=False) as client:
        with _subscribed(client, "exit.now") as sub:
            _publish_from_a_process(broker.endpoint, "exit.now", n, 1.0, mode)
            assert _count(sub, "exit.now", n) == n


@pytest.mark.parametrize("green", [False, True])
def test_an_absent_broker_is_reported_within_about_a_second(green):
    endpoint = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    if green:
        script = textwrap.dedent(f"""
            from gevent import monkey; monkey.patch_all()
            import time, zeromesh
            c = zeromesh.Client({endpoint!r}, linger=0)
            for call in (lambda: c.request("echo", b"x", timeout=5), lambda: c.push("q", b"x"), c.status):
                t0 = time.monotonic()
                try:
                    call()
                except zeromesh.UnreachableError as exc:
                    print(round(time.monotonic() - t0, 2), exc)
            c.close()
        """)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=scaled(30))
        lines = out.stdout.splitlines()
        assert len(lines) == 3, out.stdout + out.stderr
        for line in lines:
            took, message = line.split(" ", 1)
            assert float(took) < 2.0 and message.startswith(f"cannot reach the broker at {endpoint}"), line
        return
    client = zeromesh.Client(endpoint, green=False, linger=0)
    try:
        for call in (
            lambda: client.request("echo", b"x", timeout=5),
            lambda: client.push("q", b"x"),
            client.status,
            client.ping,
            lambda: client.push_many("q", [b"a", b"b"]),
        ):
            t0 = time.monotonic()
            with pytest.raises(zeromesh.UnreachableError, match=f"cannot reach the broker at {endpoint}"):
                call()
            assert time.monotonic() - t0 < 2.0
    finally:
        client.close()


def test_a_present_but_slow_broker_gets_the_whole_deadline(broker_factory):
    """A stopped (SIGSTOP) broker keeps its connections: the caller waits out its deadline
    and gets a timeout, not 'unreachable'."""
    broker = broker_factory()
    client = zeromesh.Client(broker.endpoint, green=False, linger=0)
    try:
        client.ping()
        broker.signal(19)  # SIGSTOP
        t0 = time.monotonic()
        with pytest.raises(zeromesh.TimeoutError):
            client.request("echo", b"x", timeout=3)
        assert time.monotonic() - t0 >= 3.0
    finally:
        broker.signal(18)  # SIGCONT
        client.close()


def test_push_many_failure_names_the_unconfirmed_jobs(broker_factory):
    broker = broker_factory("[queues.small]\nmax_depth = 10\n", env={"ZEROMESH_REDIS_URL": "none"})
    with zeromesh.Client(broker.endpoint, green=False) as client:
        bodies = [f"job-{i}".encode() for i in range(40)]
        with pytest.raises(zeromesh.QueueFullError) as caught:
            client.push_many("small", bodies, window=40, batch=1)
        accepted = caught.value.accepted
        unconfirmed = caught.value.unconfirmed
        assert len(accepted) == 10
        assert len(accepted) + len(unconfirmed) == 40
        assert not set(accepted) & {jid for jid, _ in unconfirmed}
        order = {body: i for i, body in enumerate(bodies)}
        assert [order[b] for _, b in unconfirmed] == sorted(order[b] for _, b in unconfirmed)
        depth = client.status()["queues"]["small"]["depth"]
        assert depth == 10


def test_unconfirmed_pushes_sent_again_run_once(broker_factory, start_worker):
    """Resending exactly the unconfirmed jobs of a failed push_many (same ids) queues nothing twice."""
    broker = broker_factory("[queues.small]\nmax_depth = 5\n", env={"ZEROMESH_REDIS_URL": "none"})
    with zeromesh.Client(broker.endpoint, green=False) as client:
        with pytest.raises(zeromesh.QueueFullError) as caught:
            client.push_many("small", [str(i).encode() for i in range(12)], window=12, batch=1)
        seen: list[bytes] = []
        start_worker(broker.endpoint, {"small": lambda job: seen.append(job.body)})
        wait_until(lambda: len(seen) == 5, scaled(10), message="the accepted jobs")
        for jid, body in caught.value.unconfirmed:
            assert client.push("small", body, id=jid) == jid
        wait_until(lambda: len(seen) == 12, scaled(10), message="every job")
        assert sorted(seen, key=int) == [str(i).encode() for i in range(12)]


def test_a_broker_that_went_away_is_reported_after_the_reconnect_grace(broker_factory):
    """A client that was connected waits RECONNECT_GRACE_S for a restart before it gives up."""
    from zeromesh.liveness import RECONNECT_GRACE_S

    broker = broker_factory()
    client = zeromesh.Client(broker.endpoint, green=False, linger=0)
    try:
        client.ping()
        broker.kill()
        t0 = time.monotonic()
        with pytest.raises(zeromesh.UnreachableError, match="cannot reach the broker"):
            client.push("q", b"x", timeout=30)
        assert RECONNECT_GRACE_S <= time.monotonic() - t0 < RECONNECT_GRACE_S + 2.0
    finally:
        client.close()
