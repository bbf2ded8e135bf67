# SPDX-License-Identifier: MIT
"""Every Redis user of the mesh works with the least-privilege ACL users of docs/redis-acl.conf.

The users are made from that file exactly as the operator's guide shows it (the first test checks
that docs/OPERATIONS.md includes it verbatim), with only the password placeholders replaced. After
each process has done its work, Redis's ACL LOG must be empty: a command a process needs but its
user lacks shows there even when the process swallowed the error. The TLS and Sentinel URL forms
are in test_redis_acl_forms.py; the Ruby and Java RedisQueue run under the consumer user in their
own suites (clients/ruby/test/redis_acl_test.rb, clients/java/.../RedisAclTest.java), from the
same file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import redis as redis_py

from zeromesh import Client, RemoteError, Reply

from ..conftest import ROOT, RedisServer, scaled, wait_until
from .edge_helpers import TCPProxy, warm_up_invalidations
from .redis_acl import ACL_FILE, ADMIN_PASSWORD, acl_fixture, acl_lines, acl_redis_fixture, run_bash  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

OPERATIONS = ROOT / "docs" / "OPERATIONS.md"


def test_the_guide_shows_the_acl_file_verbatim():
    """docs/OPERATIONS.md includes docs/redis-acl.conf as one indented block: what is tested is what is shown."""
    block = "".join("    " + line + "\n" for line in ACL_FILE.read_text().splitlines())
    assert block in OPERATIONS.read_text(), "docs/OPERATIONS.md does not show docs/redis-acl.conf as it is"
    assert len(ACL_FILE.read_text().splitlines()) == 4


def _envelope(id_: str, body: str) -> str:
    return json.dumps({"id": id_, "body": body})


BROKER_CONFIG = """
[broker]
recovery_s = 1.0
redis_wait_ms = 5000
[queues.orders]
durable = true
[queues.flaky]
max_attempts = 1
"""


@pytest.fixture
def replica(acl, tmp_path):
    """A replica of the ACL Redis, in sync, so that the broker confirms durable writes with WAIT."""
    acl.admin.config_set("repl-diskless-sync-delay", 0)  # the first sync at once, not after 5 s
    server = RedisServer(
        tmp_path / "replica",
        extra=[
            "--replicaof",
            "127.0.0.1",
            str(acl.port),
            "--masterauth",
            ADMIN_PASSWORD,
            "--requirepass",
            ADMIN_PASSWORD,
        ],
    ).start()
    wait_until(
        lambda: acl.admin.info("replication").get("slave0", {}).get("state") == "online",
        10,
        message="the replica in sync",
    )
    yield server
    server.stop()


def test_broker_user_serves_durable_spill_recovery_dead_letters_replay_and_status(
    acl, replica, broker_factory, start_worker
):
    admin = acl.admin
    # Left by this broker's previous run (taken back at its first connect), and by a Redis consumer
    # that died holding a job (recovered once its beat is older than recovery_s).
    admin.rpush("zeromesh:inflight:orders:@broker:main", _envelope("held-before", "from the last run"))
    admin.rpush("zeromesh:inflight:lost:ruby-1", _envelope("held-by-the-dead", "rescue me"))
    admin.zadd("zeromesh:consumers:lost", {"ruby-1": time.time() - 60})

    broker = broker_factory(config_text=BROKER_CONFIG, env={"ZEROMESH_REDIS_URL": acl.url("broker")})
    with Client(broker.endpoint, broker.pub_endpoint, green=False) as client:
        status = client.status()
        assert status["redis"]["up"], status["redis"]
        wait_until(lambda: [b["name"] for b in client.status()["brokers"]] == ["main"], 5, message="the registry")
        client.push("orders", b"new order")  # durable, no worker: confirmed once in Redis
        client.push_many("later", [b"later-%d" % n for n in range(20)])  # no worker: spilled
        assert admin.llen("zeromesh:queue:orders") == 2  # the one taken back, then the new one
        assert admin.llen("zeromesh:queue:later") == 20
        client.publish("zeromesh.invalidate.tag", b"card:1")
        wait_until(lambda: admin.xlen("zeromesh:invalidations") == 1, 5, message="the invalidation in the stream")

        seen: list[bytes] = []
        fail = threading.Event()
        fail.set()

        def flaky(job):
            seen.append(job.body)
            if fail.is_set():
                raise ValueError("provider down")

        start_worker(
            broker.endpoint,
            {
                "orders": lambda j: seen.append(j.body),
                "later": lambda j: seen.append(j.body),
                "lost": lambda j: seen.append(j.body),
                "flaky": flaky,
            },
        )
        wanted = {b"from the last run", b"new order", b"rescue me", *(b"later-%d" % n for n in range(20))}
        wait_until(lambda: wanted <= set(seen), 20, message="every job from Redis delivered")

        jid = client.push("flaky", b"charge 42")
        wait_until(lambda: admin.llen("zeromesh:dead:flaky") == 1, 10, message="the dead letter in Redis")
        assert [d["id"] for d in client.dead_letters("flaky")] == [jid]
        assert client.trace(jid)["state"] == "dead_letter"
        fail.clear()
        assert client.replay("flaky") == 1
        wait_until(lambda: seen.count(b"charge 42") == 2, 10, message="the replayed job run again")
        fail.set()
        client.push("flaky", b"charge 43")
        wait_until(lambda: admin.llen("zeromesh:dead:flaky") == 1, 10, message="another dead letter")
        assert client.purge("flaky") == 1
        assert admin.llen("zeromesh:dead:flaky") == 0
        wait_until(
            lambda: (
                not admin.keys("zeromesh:inflight:*")
                or all(admin.llen(k) == 0 for k in admin.keys("zeromesh:inflight:*"))
            ),
            10,
            message="every in-flight list emptied by acks",
        )
    assert "confirmed once 1 replica(s) have them" in broker.log()  # WAIT was used
    assert broker.stop() == 0
    assert not admin.exists("zeromesh:broker:main"), "the broker left the registry at its stop"
    assert acl.denials() == []
    assert "NOPERM" not in broker.log()


ROUTES = """
[[route]]
name = "cards"
path = "/cards/{id}"
service = "page"
cache_ttl_s = 300
"""


def test_edge_user_serves_pages_and_replays_invalidations(acl, broker_factory, start_worker, edge_factory):
    broker = broker_factory(env={"ZEROMESH_REDIS_URL": acl.url("broker")})
    # An operator's switch, with the broker's user: written to Redis, where the edge reads it at its start.
    switch = subprocess.run(
        [sys.executable, "-m", "zeromesh", "feature", "off", "ads", "--endpoint", broker.endpoint],
        env={**broker.env, "ZEROMESH_REDIS_URL": acl.url("broker")},
        capture_output=True,
        text=True,
        timeout=scaled(30),
    )
    assert switch.stdout == "feature ads off: written to Redis and announced\n", switch.stderr
    renders = iter(range(1, 1000))
    start_worker(broker.endpoint, {"page": lambda job: Reply(b"render %d" % next(renders), {"cache.tags": ["cards"]})})
    proxy = TCPProxy(broker.pub_port)  # the edge hears pub/sub through a link the test can cut
    try:
        edge = edge_factory(
            ROUTES, on=broker, env={"ZEROMESH_REDIS_URL": acl.url("edge"), "ZEROMESH_PUB": proxy.endpoint}
        )
        assert json.loads(edge.get("/readyz").body)["redis"] == "up"
        assert "feature ads switched off" in edge.log()  # read from Redis at the start
        with Client(broker.endpoint, broker.pub_endpoint, green=False) as client:
            warm_up_invalidations(client, edge)
            first = edge.get("/cards/1")
            assert first.status == 200 and edge.get("/cards/1").cache == "HIT"
            proxy.cut_off()
            client.publish("zeromesh.invalidate.path", "/cards/1")  # lost on the way: only the stream has it
            wait_until(lambda: acl.admin.xlen("zeromesh:invalidations") >= 2, 5, message="the event in the stream")
            proxy.restore()
            deadline = time.monotonic() + scaled(10)
            while edge.metric("zeromesh_edge_invalidations_total", kind="replayed") == 0:
                client.publish("zeromesh.invalidate.path", "/elsewhere")  # the next seq shows the gap
                time.sleep(0.1)
                assert time.monotonic() < deadline, edge.log()
        assert edge.get("/cards/1").cache == "MISS"
    finally:
        proxy.close()
    assert acl.denials() == []
    assert "NOPERM" not in edge.log() and "unavailable" not in edge.log()


def test_bash_client_with_the_consumer_user_pushes_takes_acks_fails_and_recovers(acl, tmp_path):
    admin = acl.admin
    done = tmp_path / "done"
    script = f"""
set -e
zm_push jobs first >/dev/null
zm_push jobs second >/dev/null
zm_push jobs bad >/dev/null
test "$(zm_take jobs)" = first
zm_work jobs 'body=$(cat); [ "$body" != bad ] && echo "$body" >> {done}' \\
    --max 2 --timeout 2 --max-attempts 1 --consumer b1
"""
    url = acl.url("consumer", tcp=True)
    proc = run_bash(script, url)
    assert proc.returncode == 0, proc.stderr
    assert done.read_text() == "second\n"
    dead = admin.lrange("zeromesh:dead:jobs", 0, -1)
    assert len(dead) == 1 and json.loads(dead[0])["body"] == "bad"
    assert admin.llen("zeromesh:inflight:jobs:b1") == 0

    # A raw job that fails goes back to the tail (LMOVE), then to the dead letters; idle, the loop ends.
    proc = run_bash("zm_push pics --raw cat.png && zm_work pics 'exit 1' --raw --max-attempts 2 --timeout 1", url)
    assert proc.returncode == 0, proc.stderr
    assert "back in the queue" in proc.stderr and admin.llen("zeromesh:dead:pics") == 1

    admin.rpush("zeromesh:inflight:jobs:gone", _envelope("j-9", "orphan"))
    admin.zadd("zeromesh:consumers:jobs", {"gone": time.time() - 600})
    proc = run_bash("zm_recover jobs --older-than 60 && zm_take jobs", url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "1 requeued, 0 dead-lettered\norphan"
    assert acl.denials() == []


def test_monitor_user_reads_depths_and_cannot_write(acl):
    admin = acl.admin
    admin.rpush("zeromesh:queue:mail", "a", "b")
    admin.rpush("zeromesh:dead:mail", _envelope("j-1", "bounced"))
    admin.zadd("zeromesh:consumers:mail", {"c1": 1.0})
    admin.sadd("zeromesh:brokers", "m1")
    admin.hset("zeromesh:broker:m1", mapping={"name": "m1", "endpoint": "tcp://m1:5555"})
    admin.hset("zeromesh:features", "ads", "off")
    admin.xadd("zeromesh:invalidations", {"topic": "zeromesh.invalidate.tag", "body": "card:1"})
    monitor = redis_py.Redis.from_url(acl.url("monitor"))
    assert monitor.ping()
    assert "connected_slaves" in monitor.info("replication")
    assert len(list(monitor.scan_iter(match="zeromesh:*"))) == 7
    assert (monitor.llen("zeromesh:queue:mail"), monitor.llen("zeromesh:dead:mail")) == (2, 1)
    assert json.loads(monitor.lrange("zeromesh:dead:mail", 0, 9)[0])["body"] == "bounced"
    assert monitor.zrange("zeromesh:consumers:mail", 0, -1, withscores=True) == [(b"c1", 1.0)]
    assert monitor.smembers("zeromesh:brokers") == {b"m1"}
    assert monitor.hgetall("zeromesh:broker:m1")[b"endpoint"] == b"tcp://m1:5555"
    assert monitor.hgetall("zeromesh:features") == {b"ads": b"off"}
    assert monitor.xlen("zeromesh:invalidations") == 1
    assert monitor.xrevrange("zeromesh:invalidations", count=1)[0][1][b"body"] == b"card:1"
    assert acl.denials() == [], "every read was allowed"
    for write in (
        lambda: monitor.rpush("zeromesh:queue:mail", "c"),
        lambda: monitor.delete("zeromesh:queue:mail"),
        lambda: monitor.lpop("zeromesh:queue:mail"),
        lambda: monitor.flushall(),
    ):
        with pytest.raises(redis_py.exceptions.NoPermissionError):
            write()
    with pytest.raises(redis_py.exceptions.NoPermissionError):
        monitor.llen("elsewhere")  # and no key outside zeromesh:*
    assert admin.llen("zeromesh:queue:mail") == 2


def test_a_user_missing_a_command_gets_a_clear_failure_not_a_false_success(acl, broker_factory):
    broker_line = next(line for line in acl_lines(acl.passwords) if "zeromesh-broker " in line)
    acl.add(broker_line.replace("zeromesh-broker", "zeromesh-broker-short") + " -rpush")
    acl.add(
        next(line for line in acl_lines(acl.passwords) if "zeromesh-consumer " in line).replace(
            "zeromesh-consumer", "zeromesh-consumer-short"
        )
        + " -rpush"
    )
    url = acl.url("broker", user="zeromesh-broker-short")
    broker = broker_factory(config_text="[queues.orders]\ndurable = true\n", env={"ZEROMESH_REDIS_URL": url})
    with Client(broker.endpoint, green=False) as client:
        assert client.status()["redis"]["up"]
        with pytest.raises(RemoteError) as info:
            client.push("orders", b"must not be lost silently")
    # Redis's NOPERM text, as redis-py gives it (without the code word).
    refusal = "no permissions to run the 'rpush' command"
    assert info.value.code == "unavailable" and refusal in str(info.value), info.value
    assert acl.admin.llen("zeromesh:queue:orders") == 0
    wait_until(lambda: refusal in broker.log(), 5, message="the broker logging Redis's NOPERM")

    proc = run_bash("zm_push jobs hello", acl.url("consumer", tcp=True, user="zeromesh-consumer-short"))
    assert proc.returncode != 0 and proc.stdout == ""
    assert "NOPERM" in proc.stderr, proc.stderr
    assert acl.admin.llen("zeromesh:queue:jobs") == 0
