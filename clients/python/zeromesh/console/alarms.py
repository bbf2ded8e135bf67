# SPDX-License-Identifier: MIT
"""Alarms from the history and the brokers' state: pure functions over figures.History."""

from __future__ import annotations

from .figures import History

GROWING_S = 30
"""A queue whose depth rose at every step for this long, without falling, raises an alarm."""

TIMEOUTS_WINDOW_S = 60
"""A service whose timeouts counter rose within this many seconds raises an alarm."""


def growing_queues(history: History, window_s: float = GROWING_S) -> list[tuple[str, str]]:
    """(broker, queue) whose depth never fell over the last window_s seconds and ended higher."""
    now = history.latest()
    if now is None or not history.samples or now.t - history.samples[0].t < window_s:
        return []
    start = history.at_or_before(now.t - window_s)
    if start is None:
        return []
    window = [s for s in history.samples if s.t >= start.t]
    found = []
    for key, depth in now.depths.items():
        series = [s.depths[key] for s in window if key in s.depths]
        if len(series) < 2 or depth <= series[0]:
            continue
        if all(b >= a for a, b in zip(series, series[1:])):
            found.append(key)
    return sorted(found)


def timing_out(history: History, window_s: float = TIMEOUTS_WINDOW_S) -> list[tuple[str, str, int]]:
    """(broker, service, timeouts in the window) of services whose timeouts counter rose."""
    now = history.latest()
    if now is None:
        return []
    then = history.at_or_before(now.t - window_s) or history.samples[0]
    found = []
    for key, svc in now.services.items():
        before = then.services.get(key, {}).get("timeouts", 0) if then is not now else svc["timeouts"]
        rose = svc["timeouts"] - before if svc["timeouts"] >= before else svc["timeouts"]
        if rose > 0:
            found.append((key[0], key[1], rose))
    return sorted(found)


def all_alarms(history: History, brokers: list[dict]) -> list[str]:
    """Every alarm as a sentence, brokers first. `brokers`: the poller's view
    ({name, endpoint, up, since, redis: status redis map or None})."""
    out = []
    for b in brokers:
        if not b["up"]:
            out.append(f"broker {b['name']} at {b['endpoint']} missing: not answering since {b['since']}")
        elif b.get("redis") and b["redis"].get("enabled") and not b["redis"].get("up"):
            out.append(f"broker {b['name']}: Redis down ({b['redis'].get('status') or 'not connected'})")
    for broker, queue in growing_queues(history):
        out.append(f"queue {queue} on {broker} has been growing for {GROWING_S} s")
    for broker, service, n in timing_out(history):
        out.append(f"service {service} on {broker}: {n} timeout(s) in the last {TIMEOUTS_WINDOW_S} s")
    return out
