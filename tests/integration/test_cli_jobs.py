# SPDX-License-Identifier: MIT
"""`zeromesh queue`, `scheduled`, `cancel` and `schedules` against a real broker: each says what
happened, and its exit status matches."""

from __future__ import annotations

import json
import time

from zeromesh.protocol import codec, wire

from ..conftest import scaled, wait_until
from .test_cli_client import zm
from .test_scheduled_jobs import schedule
from .wire_helpers import admin, dealer, recv

SCHEDULE = '[[schedules]]\nname = "nightly"\ncron = "0 3 * * *"\nqueue = "reports"\nbody = "build"\n'


def test_pause_resume_and_purge_from_the_command_line(broker_factory, zsocket):
    broker = broker_factory()
    done = zm(broker, "queue", "pause", "mail")
    assert done.returncode == 0 and done.stdout.decode().strip() == "mail paused"
    producer = dealer(zsocket, broker.endpoint)
    for n in range(3):
        producer.send_multipart(codec.pack_item(wire.PUSH, {"id": f"j{n}", "queue": "mail"}, b"x"))
    confirmed: set[str] = set()
    while len(confirmed) < 3:
        env = recv(producer)
        assert env.command == wire.CONFIRM, env
        confirmed.update(env.header["ids"])
    assert admin(producer, "status")["queues"]["mail"]["paused"] is True
    refused = zm(broker, "queue", "purge", "mail")
    assert refused.returncode == 2 and b"Add --yes" in refused.stderr
    done = zm(broker, "queue", "purge", "mail", "--yes", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["purged"] == 3
    done = zm(broker, "queue", "resume", "mail")
    assert done.returncode == 0 and done.stdout.decode().strip() == "mail resumed"


def test_scheduled_cancel_and_schedules_from_the_command_line(broker_factory, zsocket):
    broker = broker_factory(SCHEDULE)
    producer = dealer(zsocket, broker.endpoint)
    assert schedule(producer, "cards", "xmas", int(time.time() * 1000) + 60_000).command == wire.CONFIRM
    listed = zm(broker, "scheduled", "cards")
    assert listed.returncode == 0 and b"cards: 1 scheduled job(s)" in listed.stdout and b"xmas" in listed.stdout
    assert zm(broker, "cancel", "xmas").returncode == 0
    again = zm(broker, "cancel", "xmas")
    assert again.returncode != 0 and b"no scheduled job 'xmas'" in again.stderr
    shown = zm(broker, "schedules", "list")
    assert shown.returncode == 0 and b"nightly: '0 3 * * *' (UTC) -> reports; last never" in shown.stdout


def test_push_in_at_and_unique_from_the_command_line(broker_factory):
    broker = broker_factory()
    later = zm(broker, "push", "cards", "merry", "--in", "10m")
    assert later.returncode == 0
    jid = later.stdout.decode().strip()
    listed = zm(broker, "scheduled", "cards", "--json")
    (item,) = json.loads(listed.stdout)["items"]
    assert item["id"] == jid and 590_000 <= item["due_ms"] - time.time() * 1000 <= 610_000
    at = zm(broker, "push", "cards", "xmas", "--at", "2031-12-25T08:00:00+01:00")
    assert at.returncode == 0
    assert json.loads(zm(broker, "trace", at.stdout.decode().strip(), "--json").stdout)["due_ms"] == 1955948400000
    first = zm(broker, "push", "mail", "hi", "--unique", "welcome:ann").stdout.decode().strip()
    assert zm(broker, "push", "mail", "hi again", "--unique", "welcome:ann").stdout.decode().strip() == first
    for bad, message in (
        (["--in", "soon"], b"is not a duration"),
        (["--at", "2031-12-25T08:00:00"], b"has no offset"),
        (["--in", "1", "--at", "2031-12-25T08:00:00Z"], b"not allowed with argument"),
    ):
        done = zm(broker, "push", "cards", "x", *bad)
        assert done.returncode == 2 and message in done.stderr, (bad, done.stderr)


def test_status_watch_and_dead_letters_show_and_replay_by_id(broker_factory, start_worker):
    broker = broker_factory()
    from zeromesh import Client, DeadLetter

    def refuse(job):
        raise DeadLetter("cannot parse")

    start_worker(broker.endpoint, {"mail": refuse})
    with Client(broker.endpoint) as client:
        first = client.push("mail", b"Dear Ann, merry christmas")
        second = client.push("mail", b"\xff\xfe binary")
        wait_until(lambda: len(client.dead_letters("mail")) == 2, scaled(5), 0.05, "two dead letters")
    watched = zm(broker, "status", "--watch", "0.1", "--times", "3")
    assert (
        watched.returncode == 0
        and watched.stdout.count(b"(every 0.1s; Ctrl-C stops)") == 3
        and b"dead_lettered" in watched.stdout
    )
    shown = zm(broker, "dead-letters", "show", "mail", "--id", first)
    assert shown.returncode == 0 and b"Dear Ann, merry christmas" in shown.stdout and b"cannot parse" in shown.stdout
    binary = zm(broker, "dead-letters", "show", "mail", "--id", second, "--json")
    assert json.loads(binary.stdout)["preview"] == "hex:fffe2062696e617279"
    missing = zm(broker, "dead-letters", "show", "mail", "--id", "nope")
    assert missing.returncode != 0 and b"no dead letter 'nope' in mail" in missing.stderr
    replayed = zm(broker, "dead-letters", "replay", "mail", "--id", first, "--json")
    assert json.loads(replayed.stdout)["replayed"] == 1
