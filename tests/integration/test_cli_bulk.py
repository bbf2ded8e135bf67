# SPDX-License-Identifier: MIT
"""Long CLI operations against a real broker: `push --lines FILE` and replaying every dead
letter, each in bounded steps with progress, and an exact account when a step fails."""

from __future__ import annotations

import json

from ..conftest import scaled, wait_until
from .test_cli_client import zm

NO_REDIS = {"ZEROMESH_REDIS_URL": "none"}


def _status(broker) -> dict:
    return json.loads(zm(broker, "status", "--json").stdout)


def test_push_lines_pushes_one_job_per_line_with_progress(broker_factory, tmp_path):
    broker = broker_factory(env=NO_REDIS)
    jobs = tmp_path / "jobs.txt"
    # 12,000 jobs: three push_many steps; blank lines are not jobs.
    jobs.write_text("".join(f"card {n}\n" + ("\n" if n % 1000 == 0 else "") for n in range(12_000)))
    done = zm(broker, "push", "bulk", "--lines", str(jobs), "--progress")
    assert done.returncode == 0, done.stderr
    ids = done.stdout.decode().split()
    assert len(ids) == len(set(ids)) == 12_000
    assert b"pushing to bulk: " in done.stderr and b"pushed 12000 job(s) to bulk" in done.stderr
    assert _status(broker)["queues"]["bulk"]["depth"] == 12_000
    # Standard input, and no progress when standard error is not a terminal.
    piped = zm(broker, "push", "bulk", "--lines", "-", stdin=b"a\nb\r\n\n")
    assert piped.returncode == 0 and len(piped.stdout.split()) == 2
    assert piped.stderr.decode().strip() == "pushed 2 job(s) to bulk"


def test_push_lines_says_exactly_how_many_were_confirmed_when_the_queue_fills(broker_factory, tmp_path):
    broker = broker_factory("[queues.small]\nmax_depth = 7000\n", env=NO_REDIS)
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("".join(f"{n}\n" for n in range(12_000)))
    done = zm(broker, "push", "small", "--lines", str(jobs))
    assert done.returncode == 1, done
    printed = done.stdout.decode().split()
    depth = _status(broker)["queues"]["small"]["depth"]
    # Every printed id is queued, and every queued job's id was printed.
    assert len(printed) == depth == 7000
    assert b"7000 job(s) confirmed on small before the error" in done.stderr
    assert b"queue_full" in done.stderr, done.stderr


def test_push_lines_refuses_what_it_cannot_do(broker_factory, tmp_path):
    broker = broker_factory(env=NO_REDIS)
    for args, message in (
        (["--lines", str(tmp_path / "absent.txt")], b"cannot read"),
        (["BODY", "--lines", "-"], b"give no BODY"),
        (["--lines", "-", "--unique", "k"], b"give no BODY and no --unique"),
        (["--lines", "-", "--in", "10m"], b"--lines pushes now"),
    ):
        done = zm(broker, "push", "q", *args, stdin=b"x\n")
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    assert "q" not in _status(broker)["queues"]


def test_replay_all_goes_in_steps_with_progress_and_show_and_purge_take_ids(broker_factory, start_worker):
    broker = broker_factory(env=NO_REDIS)
    from zeromesh import Client, DeadLetter

    def refuse(job):
        raise DeadLetter("cannot parse")

    worker = start_worker(broker.endpoint, {"mail": refuse})
    with Client(broker.endpoint) as client:
        ids = client.push_many("mail", [b"job %d" % n for n in range(2500)])
        wait_until(
            lambda: client.admin("dead_letters", queue="mail", limit=1)["total"] == 2500,
            scaled(20),
            0.1,
            "2500 dead letters",
        )
        worker.stop()
        shown = zm(broker, "dead-letters", "show", "mail", ids[7], "--json")
        assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == ids[7]
        refused = zm(broker, "dead-letters", "list", "mail", ids[7])
        assert refused.returncode == 2 and b"takes no ID" in refused.stderr
        purged = zm(broker, "dead-letters", "purge", "mail", ids[7], "--id", ids[9])
        assert purged.returncode == 0 and purged.stdout.decode().strip() == "purged 2 dead letter(s)"
        missing = zm(broker, "dead-letters", "show", "mail", ids[7])
        assert missing.returncode != 0 and b"no dead letter" in missing.stderr
        done = zm(broker, "dead-letters", "replay", "mail", "--progress")
        assert done.returncode == 0, done.stderr
        assert done.stdout.decode().strip() == "replayed 2498 dead letter(s)"
        assert b"replaying mail: " in done.stderr and b"of 2,498" in done.stderr
        assert client.admin("dead_letters", queue="mail", limit=1)["total"] == 0
        assert client.status()["queues"]["mail"]["depth"] == 2498
