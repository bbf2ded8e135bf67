# SPDX-License-Identifier: MIT
"""Periodic jobs ([[schedules]]) through real brokers and Redis: each tick runs once with two
brokers running, a tick missed while no broker ran is run once or skipped as configured, and
`schedules` lists each schedule's last and next run."""

from __future__ import annotations

import collections
import subprocess
import sys
import time

import pytest

from zeromesh.protocol import redis_keys as keys

from ..conftest import scaled
from .test_scheduled_jobs import RawWorker
from .wire_helpers import admin, dealer

pytestmark = pytest.mark.timeout(60)

EVERY_SECOND = """
[[schedules]]
name = "heartbeat-mail"
cron = "* * * * * *"
queue = "ticks"
body = "tick"
"""

NEW_YEAR = """
[[schedules]]
name = "new-year"
cron = "0 0 1 1 *"
timezone = "Europe/Paris"
queue = "cards"
body = "happy new year"
missed = "{missed}"
"""


def test_each_tick_runs_once_with_two_brokers(broker_factory, zsocket):
    east = broker_factory(EVERY_SECOND, args=["--name", "east"])
    west = broker_factory(EVERY_SECOND, args=["--name", "west"])
    workers = [RawWorker(zsocket, b.endpoint, "ticks") for b in (east, west)]
    started = time.time()
    take_all_until(workers, time.monotonic() + 15.0)  # fifteen ticks of a per-second schedule
    listed = admin(dealer(zsocket, east.endpoint), "schedules")["schedules"]
    # The listed last run can be a tick due after that last take: its job is taken now.
    take_all_until(workers, time.monotonic() + scaled(1.0))
    elapsed = time.time() - started
    runs = collections.Counter()
    for w in workers:
        for jid, times in w.arrived.items():
            runs[jid] += len(times)
    ticks = sorted(int(jid.rsplit(":", 1)[1]) for jid in runs)
    twice = [jid for jid, n in runs.items() if n > 1]
    # Ticks due while the second broker was still starting arrive too: count those due in the window.
    in_window = [t for t in ticks if t >= started * 1000]
    print(
        f"\n{len(in_window)} ticks due in {elapsed:.1f}s ({len(ticks)} in all) over two brokers, {len(twice)} run twice"
    )
    assert not twice
    assert elapsed - 2 <= len(in_window) <= elapsed + 1
    assert all(b - a == 1000 for a, b in zip(ticks, ticks[1:])), ticks  # none skipped
    assert [s["name"] for s in listed] == ["heartbeat-mail"]
    assert listed[0]["last_ms"] in ticks and listed[0]["next_ms"] > listed[0]["last_ms"]


def take_all_until(workers: list[RawWorker], deadline: float) -> None:
    while time.monotonic() < deadline:
        for w in workers:
            w.take(time.monotonic() + 0.05)


@pytest.mark.parametrize("missed, runs", [("run_once", 1), ("skip", 0)])
def test_a_missed_tick_runs_once_or_is_skipped(broker_factory, zsocket, redis_server, missed, runs):
    # The schedule last ran a year and a day ago: every broker was down over the last new year.
    redis_server.client().hset(keys.SCHEDULES, "new-year", int((time.time() - 366 * 86400) * 1000))
    broker = broker_factory(NEW_YEAR.format(missed=missed))
    worker = RawWorker(zsocket, broker.endpoint, "cards")
    worker.take(time.monotonic() + scaled(1.5))
    assert len(worker.arrived) == runs, worker.arrived
    if runs:
        (jid,) = worker.arrived
        assert jid.startswith("schedule:new-year:")
        tick = int(jid.rsplit(":", 1)[1])
        assert time.strftime("%m-%d", time.gmtime(tick / 1000)) in ("12-31", "01-01")  # midnight in Paris


def test_a_bad_schedule_stops_the_start(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[[schedules]]\nname = "x"\ncron = "every day"\nqueue = "q"\nbody = "b"\n')
    done = subprocess.run(
        [sys.executable, "-m", "zeromesh", "broker", "--no-redis", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=scaled(20),
    )
    assert done.returncode == 2 and "'every day' is not a cron expression" in done.stderr, done.stderr
