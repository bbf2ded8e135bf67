# SPDX-License-Identifier: MIT
"""Three machines, each a network namespace (tests/machines/netns.py) running a broker and a
Python, a Ruby and a Java worker, each connected to all three brokers, over one Redis (AOF) in the
root namespace; producers and a caller in the test process use the list of the three brokers. A
machine dies (every process SIGKILLed) or is cut off for 10 s; each test prints its counts, over
all and per worker language."""

from __future__ import annotations

import threading
import time

import pytest

from ..conftest import scaled, wait_until
from .mesh import JOBS_PER_PRODUCER, PUSH_TIMEOUT, REQUEST_TIMEOUT, report, run_stream, status_of, wait_all_handled

pytestmark = [pytest.mark.machines, pytest.mark.timeout(120)]


def every_language_ran_jobs(languages: dict[str, tuple[int, int]]) -> None:
    idle = [language for language, (runs, _dup) in languages.items() if runs == 0]
    assert not idle, f"workers in {idle} handled no confirmed job: {languages}"


def test_a_machine_dies_mid_stream(mesh, bridge_redis):
    """Every process of one machine SIGKILLed while durable jobs stream in: every confirmed job is
    handled (those its broker held come back through another's recovery), by workers of every
    language, requests through the list succeed again within the failover bound, and no call
    outlives its deadline."""
    victim = mesh.ms[0]
    r = bridge_redis.client()
    inflight = f"zeromesh:inflight:orders:@broker:{victim.label}"
    killed: list[int] = []
    held: list[int] = []

    def die():
        killed.append(mesh.machines.kill_all(victim))
        held.append(r.llen(inflight))

    producers, caller, at = run_stream(mesh, victim, die, settle=8.0)
    assert killed and killed[0] >= 1 + len(mesh.languages)  # its broker and its workers at least
    survivors = [m for m in mesh.ms if m is not victim]
    wait_all_handled(mesh, producers)
    languages = report(
        f"{victim.label} died ({killed[0]} processes, {held[0]} jobs in its broker's in-flight list)",
        mesh,
        producers,
        caller,
        at,
    )
    every_language_ran_jobs(languages)
    assert r.llen(inflight) == 0  # recovered by a survivor
    confirmed = sum(len(p.confirmed) for p in producers)
    assert confirmed == len(producers) * JOBS_PER_PRODUCER, [p.failed[:2] for p in producers]
    recovered = caller.first_ok_after(at)
    assert recovered is not None and recovered <= 3.0 + scaled(2.5)
    assert max(p.longest for p in producers) < PUSH_TIMEOUT and caller.longest < REQUEST_TIMEOUT + 2
    # The survivors list each other; the dead broker's entry is gone within its 10 s expiry or still listed.
    for m in survivors:
        assert {"m2", "m3"} <= {b["name"] for b in status_of(m)["brokers"]}


def test_a_machine_cut_off_for_10s_heals(mesh):
    """One machine's link down for 10 s, then up: the mesh heals (every broker lists three brokers
    and all nine workers again) and every confirmed job is handled, its workers' included."""
    victim = mesh.ms[0]
    cut_for = 10.0

    def cut():
        mesh.machines.cut(victim)
        threading.Timer(cut_for, mesh.machines.restore, args=(victim,)).start()

    producers, caller, at = run_stream(mesh, victim, cut, settle=cut_for + 3.0)
    wait_until(lambda: time.monotonic() > at + cut_for, cut_for + 1, 0.1, "the restore")
    healed_at = mesh.wait_healed(25)
    wait_all_handled(mesh, producers)
    languages = report(f"{victim.label} cut off for {cut_for:.0f}s", mesh, producers, caller, at)
    print(f"healed {healed_at - at - cut_for:.2f}s after the restore: {mesh.registered()}")
    every_language_ran_jobs(languages)
    # A push the cut-off broker was storing when its Redis went out of reach is refused, saying so
    # (its answer arrives once the link is back): the producer knows it is not confirmed.
    failed = [f for p in producers for f in p.failed]
    assert sum(len(p.confirmed) for p in producers) + len(failed) == len(producers) * JOBS_PER_PRODUCER
    # Or, when the write left and its answer was lost with the link, that it may be stored (and run).
    assert all(
        f.startswith("RemoteError: unavailable: could not store the job in Redis")
        or f.startswith("RemoteError: unavailable: redis did not confirm storing the job")
        for f in failed
    ), failed
    # Nothing comes back from a cut link, not even a RST: the clients' ZMTP heartbeats (1 s, dropped
    # after 3 s without a pong) turn the silence into a disconnect, then failover_s (3 s) moves them.
    recovered = caller.first_ok_after(at)
    assert recovered is not None and recovered <= 3.0 + 3.0 + scaled(2.5), recovered
    assert max(p.longest for p in producers) < PUSH_TIMEOUT and caller.longest < REQUEST_TIMEOUT + 2
