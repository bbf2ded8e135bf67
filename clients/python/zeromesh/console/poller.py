# SPDX-License-Identifier: MIT
"""The poller: the single owner of the console's figures.

Every second it asks each broker for `status`: the ones given on the command line, and every
broker their registry (status `brokers`) lists, by its advertised endpoint. From the answers it
keeps the history (figures.History), the alarms, and one snapshot (a dict of plain data) that
the pages render and the SSE stream sends. A broker that stops answering stays listed as
missing, with the time it was last heard.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent

from . import alarms
from .figures import History, Sample

log = logging.getLogger("zeromesh.console.poller")

INTERVAL_S = 1.0
"""Seconds between polls (and between SSE snapshots)."""

STATUS_TIMEOUT_S = 0.8
"""How long one broker's status may take before that poll counts it as not answering."""


def stamp(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


@dataclass
class Target:
    """One broker the poller asks: by endpoint until its first answer gives its name."""

    endpoint: str
    client: Any
    name: str = ""
    status: dict | None = None
    up: bool = False
    since: float = field(default_factory=time.time)  # when `up` last changed
    error: str = ""


class Poller:
    def __init__(
        self, seeds: list[str], make_client: Callable[[str], Any], clock: Callable[[], float] = time.time
    ) -> None:
        if not seeds:
            raise TypeError("the poller needs at least one broker endpoint")
        self.make_client = make_client
        self.clock = clock
        self.targets: dict[str, Target] = {e: Target(e, make_client(e)) for e in seeds}
        self.history = History()
        self.snapshot: dict = empty_snapshot()  # until the first poll (start() makes one before serving)
        self.version = 0
        self._loop: Any = None

    # -- the loop ---------------------------------------------------------

    def start(self) -> Poller:
        self.poll_once()
        self._loop = gevent.spawn(self._run)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.kill()
        for target in self.targets.values():
            target.client.close()

    def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.poll_once()
            except Exception:  # a bug here must not stop the figures for good
                log.exception("poll failed")
            gevent.sleep(max(0.05, INTERVAL_S - (time.monotonic() - started)))

    def poll_once(self) -> None:
        jobs = [gevent.spawn(self._ask, t) for t in list(self.targets.values())]
        gevent.joinall(jobs, timeout=STATUS_TIMEOUT_S + 1.0)
        self._follow_registry()
        self.snapshot = self._build(self.clock())
        self.version += 1

    def _ask(self, target: Target) -> None:
        try:
            status = target.client.status()
        except Exception as exc:  # any failure means: not answering now
            if target.up or not target.error:
                target.since = self.clock()
            target.up, target.error = False, str(exc) or type(exc).__name__
            return
        if not target.up:
            target.since = self.clock()
        target.up, target.status, target.error = True, status, ""
        target.name = str(status.get("name") or target.endpoint)

    def _follow_registry(self) -> None:
        """Add every registered broker not yet asked (a broker's own entry matches by name)."""
        known = {t.name for t in self.targets.values() if t.name}
        for target in list(self.targets.values()):
            for entry in (target.status or {}).get("brokers") or []:
                name, endpoint = entry.get("name"), entry.get("endpoint")
                if not name or not endpoint or name in known or endpoint in self.targets:
                    continue
                log.info("console: polling broker %s at %s (from the registry)", name, endpoint)
                self.targets[endpoint] = Target(endpoint, self.make_client(endpoint), name=name)
                known.add(name)

    def client_for(self, broker: str) -> Any:
        """The client of the broker named `broker` (a KeyError when the console does not know it)."""
        for target in self.targets.values():
            if target.name == broker:
                return target.client
        raise KeyError(broker)

    def any_client(self) -> Any:
        """A client of a broker that answered last time (else of the first one given)."""
        for target in self.targets.values():
            if target.up:
                return target.client
        return next(iter(self.targets.values())).client

    # -- the figures ------------------------------------------------------

    def _build(self, now: float) -> dict:
        sample = Sample(now, {"enqueued": 0, "acked": 0, "requested": 0, "answered": 0})
        brokers, queues, services, workers, banners = [], [], [], [], []
        for target in self.targets.values():
            status = target.status or {}
            name = target.name or target.endpoint
            brokers.append(
                {
                    "name": name,
                    "endpoint": target.endpoint,
                    "epoch": status.get("epoch", ""),
                    "uptime_s": status.get("uptime_s"),
                    "redis": status.get("redis"),
                    "up": target.up,
                    "since": stamp(target.since),
                    "error": target.error,
                }
            )
            if not target.up:
                banners.append(f"broker at {target.endpoint} not answering since {stamp(target.since)}")
                continue
            for qname, q in sorted((status.get("queues") or {}).items()):
                sample.totals["enqueued"] += q.get("enqueued", 0)
                sample.totals["acked"] += q.get("acked", 0)
                sample.depths[(name, qname)] = q.get("depth", 0)
                queues.append({"broker": name, "name": qname, **q})
            for sname, s in sorted((status.get("services") or {}).items()):
                sample.totals["requested"] += s.get("requested", 0)
                sample.totals["answered"] += s.get("answered", 0)
                latency = s.get("latency") or {}
                sample.services[(name, sname)] = {
                    "requested": s.get("requested", 0),
                    "timeouts": (s.get("errors") or {}).get("timeout", 0),
                    "buckets": list(latency.get("buckets") or []),
                    "bounds": list(latency.get("bounds_s") or []),
                }
                services.append({"broker": name, "name": sname, **s})
            for w in status.get("workers") or []:
                workers.append({"broker": name, **w})
        last = self.history.latest()
        if last is None or now - last.t >= INTERVAL_S / 2:  # an extra poll (after an action) would make rates jumpy
            self.history.add(sample)
        for s in services:
            key = (s["broker"], s["name"])
            s.update(self.history.service_figures(key))
            s["timeouts"] = (s.get("errors") or {}).get("timeout", 0)
            s["error_count"] = sum((s.get("errors") or {}).values())
        rates = {k: round(self.history.last_rate(k), 1) for k in sample.totals}
        totals = {
            **sample.totals,
            "depth": sum(q.get("depth", 0) for q in queues),
            "in_flight": sum(q.get("in_flight", 0) for q in queues),
            "dead_letters": sum(q.get("dead_letters", 0) for q in queues),
            "workers": len(workers),
            "brokers_up": sum(1 for b in brokers if b["up"]),
        }
        snap = {
            "t": now,
            "time": stamp(now),
            "brokers": brokers,
            "queues": queues,
            "services": services,
            "workers": workers,
            "totals": totals,
            "rates": rates,
            "alarms": alarms.all_alarms(self.history, brokers),
            "banners": banners,
            "graph": self.history.rates(),
        }
        snap["figs"] = flat_figures(snap)
        return snap


def empty_snapshot() -> dict:
    """A snapshot with every key and no figures."""
    totals = dict.fromkeys(("enqueued", "acked", "requested", "answered", "depth", "in_flight", "dead_letters"), 0)
    snap: dict = {"t": 0, "time": "", "brokers": [], "queues": [], "services": [], "workers": []}
    snap.update(totals={**totals, "workers": 0, "brokers_up": 0}, alarms=[], banners=[], graph={})
    snap["rates"] = dict.fromkeys(("enqueued", "acked", "requested", "answered"), 0.0)
    snap["figs"] = flat_figures(snap)
    return snap


def flat_figures(snap: dict) -> dict[str, Any]:
    """The figures the page patches, by the key its elements carry in data-fig."""
    figs: dict[str, Any] = {"time": snap["time"]}
    for k, v in snap["totals"].items():
        figs[f"totals.{k}"] = v
    for k, v in snap["rates"].items():
        figs[f"rates.{k}"] = v
    for b in snap["brokers"]:
        figs[f"b.{b['name']}.uptime_s"] = b["uptime_s"]
        figs[f"b.{b['name']}.state"] = "up" if b["up"] else f"missing since {b['since']}"
    for q in snap["queues"]:
        for k in (
            "depth",
            "in_memory",
            "in_redis",
            "in_flight",
            "scheduled",
            "retry_waiting",
            "dead_letters",
            "oldest_age_s",
        ):
            figs[f"q.{q['broker']}.{q['name']}.{k}"] = q.get(k)
        figs[f"q.{q['broker']}.{q['name']}.rates"] = f"{q.get('rate_in', 0)} / {q.get('rate_out', 0)}"
        figs[f"q.{q['broker']}.{q['name']}.paused"] = "paused" if q.get("paused") else "running"
    for s in snap["services"]:
        for k in ("rate", "p50_ms", "p99_ms", "error_count", "timeouts", "workers", "pending"):
            figs[f"s.{s['broker']}.{s['name']}.{k}"] = s.get(k)
    for w in snap["workers"]:
        for k in ("credit", "held", "idle_s"):
            figs[f"w.{w['broker']}.{w.get('peer')}.{k}"] = w.get(k)
    return figs
