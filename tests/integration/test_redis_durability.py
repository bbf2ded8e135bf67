# SPDX-License-Identifier: MIT
"""Durable and spilled queues on a real Redis: crashes (with Python, Ruby and Java producers),
outages, other languages' access."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from zeromesh import Client, RemoteError, TimeoutError as ZTimeoutError
from zeromesh.broker import redis_upkeep
from zeromesh.protocol import redis_keys as keys

from ..conformance.crosslang import RUBY_DRIVER, java_command, ruby_command
from ..conftest import RedisServer, scaled, wait_until
from .conftest import restart_on_same_ports

DURABLE = "[queues.orders]\ndurable = true\n"


def collector():
    """A handler that records every body it sees, and the set of those bodies."""
    seen: list[bytes] = []
    lock = threading.Lock()

    def handle(job):
        with lock:
            seen.append(job.body)

    return handle, seen


def test_durable_pushes_survive_a_broker_sigkill(broker_factory, start_worker):
    """Every push acknowledged to its producer reaches a worker, though the broker dies mid-stream."""
    broker = broker_factory(config_text=DURABLE)
    handle, seen = collector()

    def slow(job):  # slow enough that jobs wait in the broker and in flight when it dies
        time.sleep(0.001)
        handle(job)

    start_worker(broker.endpoint, {"orders": slow}, concurrency=2, credit=50)
    confirmed: list[bytes] = []
    errors: list[BaseException] = []
    total = 6000

    def produce():
        with Client(broker.endpoint, green=False) as client:
            for start in range(0, total, 200):
                bodies = [b"order-%d" % n for n in range(start, start + 200)]
                try:  # unconfirmed pushes are resent to the restarted broker, so all should land
                    client.push_many("orders", bodies, timeout=scaled(20))
                    confirmed.extend(bodies)
                except (ZTimeoutError, RemoteError) as exc:
                    errors.append(exc)
                    return

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(lambda: len(confirmed) >= 2000, 30, message="2000 confirmed pushes")
    broker.kill()
    killed_at = len(confirmed)
    time.sleep(0.3)
    restart_on_same_ports(broker_factory, broker, config_text=DURABLE)
    producer.join(scaled(60))
    assert not producer.is_alive() and not errors
    assert len(confirmed) == total and killed_at < total
    wanted = set(confirmed)
    wait_until(
        lambda: wanted <= set(seen),
        60,
        interval=0.1,
        message=f"all {len(wanted)} confirmed jobs delivered (missing {len(wanted - set(seen))})",
    )
    assert len(wanted) == len(confirmed)  # bodies are unique: each was confirmed once


RUBY_PRODUCER = r"""
# push_many in chunks of 200; prints each chunk's first and last number once it is confirmed.
require "zeromesh"
endpoint, total, timeout = ARGV[0], Integer(ARGV[1]), Float(ARGV[2])
client = Zeromesh::Client.new(endpoint: endpoint)
(0...total).step(200) do |start|
  last = [start + 200, total].min - 1
  client.push_many("orders", (start..last).map { |n| "order-#{n}" }, timeout: timeout)
  puts "#{start} #{last}"
  $stdout.flush
end
client.close
"""

JAVA_PRODUCER = r"""
import io.zeromesh.Client;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** pushMany in chunks of 200; prints each chunk's first and last number once it is confirmed. */
public class Producer {
    public static void main(String[] args) {
        int total = Integer.parseInt(args[1]);
        Duration timeout = Duration.ofMillis((long) (Double.parseDouble(args[2]) * 1000));
        try (Client client = Client.builder().endpoint(args[0]).build()) {
            for (int start = 0; start < total; start += 200) {
                int last = Math.min(start + 200, total) - 1;
                List<byte[]> bodies = new ArrayList<>();
                for (int n = start; n <= last; n++) {
                    bodies.add(("order-" + n).getBytes(StandardCharsets.UTF_8));
                }
                client.pushMany("orders", bodies, null, timeout);
                System.out.println(start + " " + last);
                System.out.flush();
            }
        }
    }
}
"""


def producer_command(language: str, tmp_path) -> list[str]:
    """How to run the language's producer program; skips without the toolchain (a failure under CI=true)."""
    if language == "ruby":
        return [ruby_command()[0], "-I", str(RUBY_DRIVER.parents[1] / "lib"), "-e", RUBY_PRODUCER]
    java, cp_flag, classpath, _main = java_command()
    source = tmp_path / "Producer.java"
    source.write_text(JAVA_PRODUCER)
    return [java, cp_flag, classpath, str(source)]  # a single-file source program (JDK 11+)


@pytest.mark.parametrize("language", ["ruby", "java"])
def test_other_languages_push_many_survives_a_broker_sigkill(language, broker_factory, start_worker, tmp_path):
    """Ruby's push_many and Java's pushMany, with the broker SIGKILLed mid-stream: every job the
    producer got confirmed reaches a worker (its unconfirmed pushes go again, same ids, to the new broker)."""
    command = producer_command(language, tmp_path)
    broker = broker_factory(config_text=DURABLE)
    handle, seen = collector()
    start_worker(broker.endpoint, {"orders": handle}, concurrency=2, credit=50)
    total = 6000
    producer = subprocess.Popen(
        [*command, broker.endpoint, str(total), str(scaled(20))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    confirmed: list[bytes] = []

    def read_confirms():
        assert producer.stdout is not None
        for line in producer.stdout:
            first, last = map(int, line.split())
            confirmed.extend(b"order-%d" % n for n in range(first, last + 1))

    reader = threading.Thread(target=read_confirms, daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: len(confirmed) >= 2000 or producer.poll() is not None,
            60,
            message=f"2000 confirmed pushes from {language}",
        )
        assert producer.poll() is None, f"the {language} producer ended early: {producer.stderr.read()}"
        broker.kill()
        killed_at = len(confirmed)
        time.sleep(0.3)
        restart_on_same_ports(broker_factory, broker, config_text=DURABLE)
        rc = producer.wait(scaled(60))
    finally:
        if producer.poll() is None:
            producer.kill()
    reader.join(5)
    assert rc == 0, f"the {language} producer failed: {producer.stderr.read()}"
    assert len(confirmed) == total and killed_at < total
    wanted = set(confirmed)
    wait_until(
        lambda: wanted <= set(seen),
        60,
        interval=0.1,
        message=f"all {len(wanted)} confirmed jobs delivered (missing {len(wanted - set(seen))})",
    )
    assert len(wanted) == total  # bodies are unique: each chunk was confirmed once


def test_spill_without_workers_then_drain_in_order(broker, client, start_worker, redis_server):
    """No worker: jobs wait in Redis, visible to redis-cli; a worker that comes drains them oldest first."""
    bodies = [b"job-%d" % n for n in range(500)]
    client.push_many("later", bodies)
    r = redis_server.client()
    assert r.llen("zeromesh:queue:later") == 500
    first = json.loads(r.lindex("zeromesh:queue:later", 0))
    assert first["body"] == "job-0" and first["id"]
    handle, seen = collector()
    start_worker(broker.endpoint, {"later": handle}, concurrency=1, credit=10)
    wait_until(lambda: len(seen) == 500, 20, message="500 drained jobs")
    assert seen == bodies  # one worker, one thread: FIFO end to end
    wait_until(lambda: r.llen("zeromesh:inflight:later:@broker:main") == 0, 5, message="in-flight list emptied by acks")


def test_memory_limit_spills_to_redis_instead_of_refusing(broker_factory, start_worker, redis_server):
    broker = broker_factory(config_text="[queues.small]\nmax_depth = 50\n")
    gate = threading.Event()
    handle, seen = collector()

    def blocked(job):
        gate.wait(scaled(30))
        handle(job)

    start_worker(broker.endpoint, {"small": blocked}, concurrency=1, credit=1)
    with Client(broker.endpoint, green=False) as client:
        ids = client.push_many("small", [b"%d" % n for n in range(300)])
        assert len(ids) == 300
        status = client.status()["queues"]["small"]
        assert status["in_memory"] <= 50 and status["depth"] + status["in_flight"] == 300
    assert redis_server.client().llen("zeromesh:queue:small") >= 249
    gate.set()
    wait_until(lambda: len(seen) == 300, 20, message="all 300 jobs")
    assert sorted(seen, key=int) == [b"%d" % n for n in range(300)]


def test_redis_down_keeps_routing_refuses_durable_and_recovers(broker_factory, start_worker, tmp_path):
    redis = RedisServer(tmp_path / "own-redis").start()
    try:
        broker = broker_factory(config_text=DURABLE, env={"ZEROMESH_REDIS_URL": redis.url})
        handle, seen = collector()
        start_worker(broker.endpoint, {"orders": handle, "plain": handle, "echo": lambda job: job.body})
        with Client(broker.endpoint, green=False) as client:
            client.push("orders", b"before")
            redis.kill()
            wait_until(lambda: not client.status()["redis"]["up"], 10, message="status shows redis down")
            # Non-durable traffic goes on.
            assert client.request("echo", b"still here", timeout=scaled(5)) == b"still here"
            client.push("plain", b"memory job")
            # A durable push is refused clearly, never dropped silently.
            with pytest.raises(RemoteError) as info:
                client.push("orders", b"during")
            assert info.value.code == "unavailable" and "Redis" in str(info.value)
            assert "redis down" in broker.log()
            redis.start()  # same socket path: the broker reconnects with backoff
            wait_until(lambda: client.status()["redis"]["up"], 15, message="status shows redis up again")
            client.push("orders", b"after")
        wait_until(lambda: {b"before", b"memory job", b"after"} <= set(seen), 10, message="jobs delivered")
        assert b"during" not in seen
    finally:
        redis.stop()


def test_worker_killed_holding_redis_jobs_gets_them_redelivered(broker, client, worker_process, redis_server):
    r = redis_server.client()
    # Fed from outside (as bash or Ruby would), consumed through the broker.
    r.rpush("zeromesh:queue:work", *[json.dumps({"id": f"ext-{n}", "body": f"b{n}"}) for n in range(40)])
    victim = worker_process(
        broker.endpoint, "--queue", "work", "--sleep", "30", "--concurrency", "4", "--credit", "8", label="victim"
    )
    wait_until(lambda: len(victim.lines("start")) >= 4, 15, message="victim busy with jobs")
    victim.signal(9)
    victim.wait(5)
    rescuer = worker_process(broker.endpoint, "--queue", "work", "--concurrency", "4", label="rescuer")
    wait_until(lambda: len(rescuer.lines("done")) >= 40, 20, message="all 40 jobs done by the rescuer")
    assert {line[0] for line in rescuer.lines("done")} == {f"ext-{n}" for n in range(40)}
    retried = {line[0]: int(line[1]) for line in rescuer.lines("start")}
    assert any(attempt == 2 for attempt in retried.values())


def test_dead_redis_consumer_in_flight_jobs_are_recovered(broker_factory, start_worker, redis_server):
    broker = broker_factory(config_text="[broker]\nrecovery_s = 1.0\n")
    r = redis_server.client()
    r.rpush("zeromesh:queue:lost", json.dumps({"id": "held-by-the-dead", "body": "rescue me"}))
    # A direct consumer (say, a Ruby process) took the job, heartbeated once, and died.
    r.lmove("zeromesh:queue:lost", "zeromesh:inflight:lost:ruby-1234", "LEFT", "RIGHT")
    r.zadd("zeromesh:consumers:lost", {"ruby-1234": time.time() - 60})
    handle, seen = collector()
    start_worker(broker.endpoint, {"lost": handle})
    wait_until(lambda: seen == [b"rescue me"], 15, message="recovered job delivered")
    assert r.llen("zeromesh:inflight:lost:ruby-1234") == 0
    assert r.zscore("zeromesh:consumers:lost", "ruby-1234") is None


def test_broker_recovery_reads_the_dead_then_recovers_each_unless_it_beat_meanwhile(redis_server):
    """The broker's upkeep: ZRANGEBYSCORE finds the silent consumers, then one script per consumer,
    which leaves one that beat between the two steps alone."""
    redis_server.flush()
    r = redis_server.client()
    recover_dead = r.register_script(keys.RECOVER_DEAD)
    now = time.time()
    r.zadd("zeromesh:consumers:lost", {"dead-1": now - 60, "dead-2": now - 60, "live": now})
    for name in ("dead-1", "dead-2", "live"):
        r.rpush(f"zeromesh:inflight:lost:{name}", json.dumps({"id": name, "body": "x"}))
    depths = redis_upkeep.beat_and_measure(r, recover_dead, "@broker:t", ["lost"], 30.0, lambda q: (False, 5))
    assert depths == {"lost": (0, 0)}, "measured before the recovery"
    assert sorted(json.loads(e)["id"] for e in r.lrange("zeromesh:queue:lost", 0, -1)) == ["dead-1", "dead-2"]
    assert sorted(r.zrange("zeromesh:consumers:lost", 0, -1)) == [b"@broker:t", b"live"]
    assert r.llen("zeromesh:inflight:lost:live") == 1
    # Read as dead at the cutoff, but it beats before the script runs: it keeps its job and its place.
    r.zadd("zeromesh:consumers:lost", {"late": now - 60})
    r.rpush("zeromesh:inflight:lost:late", json.dumps({"id": "late", "body": "x"}))
    r.zadd("zeromesh:consumers:lost", {"late": time.time()})
    redis_upkeep.recover_dead_consumers(r, recover_dead, {"lost": ["late"]}, now - 30, lambda q: (False, 5))
    assert r.llen("zeromesh:inflight:lost:late") == 1 and r.llen("zeromesh:queue:lost") == 2
    assert r.zscore("zeromesh:consumers:lost", "late") is not None


def test_bash_loop_consumes_a_raw_queue_fed_by_python(broker_factory, redis_server, tmp_path):
    broker = broker_factory(config_text="[queues.thumbs]\nraw = true\n")
    with Client(broker.endpoint, green=False) as client:
        client.push_many("thumbs", [b"photo-%d.jpg" % n for n in range(5)])
    out = tmp_path / "processed.txt"
    script = tmp_path / "my-script"
    script.write_text(f'#!/bin/sh\necho "resized $1" >> {out}\n')
    script.chmod(0o755)
    # The classic loop, verbatim but for the socket and a bound on its iterations.
    loop = (
        f"QUEUE_NAME=zeromesh:queue:thumbs; for i in 1 2 3 4 5; do "
        f"args=`redis-cli -s {redis_server.socket} -d $'\\t' blpop $QUEUE_NAME 0 | cut -f2`; {script} $args; done"
    )
    subprocess.run(["bash", "-c", loop], check=True, timeout=scaled(20))
    assert out.read_text().splitlines() == [f"resized photo-{n}.jpg" for n in range(5)]


def test_bash_producer_feeds_a_python_worker(broker, start_worker, redis_server):
    handle, seen = collector()
    start_worker(broker.endpoint, {"mail": handle})
    produce = (
        f"for who in ann bob 'carl jr'; do "
        f"redis-cli -s {redis_server.socket} rpush zeromesh:queue:mail "
        f'"$(jq -nc --arg b "hello $who" \'{{body: $b}}\')" >/dev/null; done'
    )
    subprocess.run(["bash", "-c", produce], check=True, timeout=scaled(20))
    wait_until(lambda: len(seen) == 3, 10, message="three mails")
    assert seen == [b"hello ann", b"hello bob", b"hello carl jr"]


def test_malformed_element_is_dead_lettered_not_delivered(broker, client, start_worker, redis_server):
    r = redis_server.client()
    r.rpush("zeromesh:queue:strict", b"this is not an envelope", json.dumps({"id": "fine", "body": "ok"}))
    handle, seen = collector()
    start_worker(broker.endpoint, {"strict": handle})
    wait_until(lambda: seen == [b"ok"], 10, message="the good job")
    dead = wait_until(lambda: client.dead_letters("strict"), 10, message="dead letter listed")
    assert "malformed envelope" in dead[0]["error"]


def test_dead_letters_live_in_redis_and_replay_from_the_cli(broker_factory, start_worker, redis_server):
    broker = broker_factory(config_text="[queues.flaky]\nmax_attempts = 2\n")
    attempts: list[int] = []
    fail = threading.Event()
    fail.set()

    def handler(job):
        attempts.append(job.attempt)
        if fail.is_set():
            raise ValueError("payment provider down")

    start_worker(broker.endpoint, {"flaky": handler})
    with Client(broker.endpoint, green=False) as client:
        jid = client.push("flaky", b"charge 42")
        wait_until(lambda: redis_server.client().llen("zeromesh:dead:flaky") == 1, 10, message="dead letter in redis")
        cli = [*zeromesh_cli(broker), "dead-letters", "list", "flaky", "--json", "--endpoint", broker.endpoint]
        listed = json.loads(subprocess.run(cli, capture_output=True, text=True, check=True, timeout=30).stdout)
        assert listed[0]["id"] == jid and "payment provider down" in listed[0]["error"]
        assert client.trace(jid)["state"] == "dead_letter"
        fail.clear()
        subprocess.run(
            [*zeromesh_cli(broker), "dead-letters", "replay", "flaky", "--endpoint", broker.endpoint],
            check=True,
            timeout=30,
            capture_output=True,
        )
        wait_until(lambda: len(attempts) == 3, 10, message="replayed job run again")
        assert attempts == [1, 2, 1]
        assert redis_server.client().llen("zeromesh:dead:flaky") == 0


def zeromesh_cli(broker) -> list[str]:
    import sys

    return [sys.executable, "-m", "zeromesh"]  # the endpoint comes from --endpoint below


def test_invalidation_events_are_recorded_in_a_redis_stream(broker, client, redis_server):
    client.publish("zeromesh.invalidate.tag", b"card:42")
    client.publish("zeromesh.invalidate.path", b"/cards")
    client.publish("cards.sent", b"not recorded")
    r = redis_server.client()
    entries = wait_until(
        lambda: r.xrange("zeromesh:invalidations") if r.xlen("zeromesh:invalidations") >= 2 else None,
        5,
        message="two stream entries",
    )
    fields = [e[1] for e in entries]
    assert [(f[b"topic"], f[b"body"], f[b"seq"]) for f in fields] == [
        (b"zeromesh.invalidate.tag", b"card:42", b"1"),
        (b"zeromesh.invalidate.path", b"/cards", b"1"),
    ]
    assert fields[0][b"epoch"] == client.status()["epoch"].encode()
