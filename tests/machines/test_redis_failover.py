# SPDX-License-Identifier: MIT
"""Redis under Sentinel across the machines: a primary, two replicas and three sentinels on the
bridge address in the root namespace, and the three machines' brokers (each with a Python, a Ruby
and a Java worker on all three) given the redis+sentinel:// URL. The primary is SIGKILLed while
producers push durable jobs through every broker: Sentinel promotes a replica, every broker
follows and confirms pushes again, the workers keep getting jobs, and every confirmed push is
handled (a broker confirms one only once WAIT says a replica has it, SPEC 15)."""

from __future__ import annotations

import time

import pytest

from ..conftest import scaled, wait_until
from ..integration.sentinel_helpers import SentinelSet
from .mesh import PUSH_TIMEOUT, Mesh, Producer, by_language, client_on, language_text, wait_all_handled
from .netns import BRIDGE_ADDRESS

pytestmark = [pytest.mark.machines, pytest.mark.timeout(120)]

BEFORE = 300
"""Confirmed pushes (over all producers) before the primary is killed."""
AFTER_EACH = 100
"""Confirmed pushes each producer (so each broker) must get after the kill before the stream stops."""
MOST_JOBS = 5000  # a producer's bound; the test stops them long before


@pytest.fixture
def bridge_sentinels(machines, tmp_path):
    directory = tmp_path / "sentinels"
    directory.mkdir()
    group = SentinelSet(directory, host=BRIDGE_ADDRESS, replicas=2)
    try:
        group.start()
        wait_until(group.sentinels_know_the_replicas, 20, 0.2, "the sentinels to see both replicas and each other")
        yield group
    finally:
        group.stop()


def test_the_redis_primary_killed_mid_stream(machines, worker_programs, bridge_sentinels, tmp_path):
    sentinels = bridge_sentinels
    mesh = Mesh(machines, sentinels.url, worker_programs, tmp_path).start()
    producers = [Producer(client_on(mesh, m, failover_s=3.0), m.label, MOST_JOBS) for m in mesh.ms]
    try:
        for p in producers:
            p.start()
        wait_until(lambda: sum(len(p.confirmed) for p in producers) >= BEFORE, 30, 0.01, f"{BEFORE} confirmed pushes")
        sentinels.primary.kill()
        killed_at = time.monotonic()
        wait_until(
            lambda: all(sum(1 for t in p.confirmed_at if t > killed_at) >= AFTER_EACH for p in producers),
            40,
            0.1,
            f"{AFTER_EACH} confirmed pushes through every broker after the primary's SIGKILL",
        )
    finally:
        for p in producers:
            p.stop.set()
        for p in producers:
            p.join(scaled(PUSH_TIMEOUT + 5))
            p.client.close()
    assert not any(p.is_alive() for p in producers), "a producer hangs"
    promoted = sentinels.primary_address()
    wait_all_handled(mesh, producers)

    confirmed = [jid for p in producers for jid in p.confirmed]
    after = {jid for p in producers for jid, t in zip(p.confirmed, p.confirmed_at, strict=True) if t > killed_at}
    done = mesh.done()
    handled = sum(1 for jid in confirmed if done[jid])
    duplicates = sum(done[jid] - 1 for jid in confirmed if done[jid] > 1)
    failed = [f for p in producers for f in p.failed]
    firsts = {p.label: p.first_confirmed_after(killed_at) for p in producers}
    languages = by_language(mesh, confirmed)
    languages_after = by_language(mesh, sorted(after))
    print(
        f"\nRedis primary SIGKILLed: confirmed {len(confirmed)} ({len(after)} after the kill), handled {handled}, "
        f"duplicates {duplicates}, failed pushes {len(failed)}, longest push {max(p.longest for p in producers):.2f}s; "
        f"first confirmed push after the SIGKILL: {min(t for t in firsts.values() if t is not None):.2f}s "
        f"(per broker: {', '.join(f'{k} {v:.2f}s' for k, v in firsts.items() if v is not None)}); "
        f"primary now {promoted} (was port {sentinels.primary_port}); "
        f"by worker language: {language_text(languages)}; of the pushes confirmed after the kill: "
        f"{language_text(languages_after)}; "
        f"failures: {sorted(set(f[:90] for f in failed))}"
    )
    assert handled == len(confirmed)  # wait_all_handled said so; the count above is what it checked
    assert promoted is not None and promoted[1] in sentinels.replica_ports, promoted
    # While no primary answers, a broker refuses durable pushes, saying so; none hangs.
    assert all(f.startswith("RemoteError: unavailable") for f in failed), failed[:5]
    assert max(p.longest for p in producers) < PUSH_TIMEOUT
    idle = [language for language, (runs, _dup) in languages_after.items() if runs == 0]
    assert not idle, f"workers in {idle} got none of the jobs confirmed after the failover: {languages_after}"
