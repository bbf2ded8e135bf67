# SPDX-License-Identifier: MIT
"""Periodic jobs: `[[schedules]]` in the broker config, and when each is next due.

    [[schedules]]
    name = "daily-digest"
    cron = "0 8 * * *"            # croniter syntax; a 6th field is seconds ("*/5 * * * * *"... see docs)
    timezone = "Europe/Paris"     # IANA name; default UTC. Ticks follow the zone's wall clock.
    queue = "digests"
    body = "send the digest"
    headers = { kind = "digest" } # optional, string values
    missed = "skip"               # or "run_once": after every broker was down over a tick

Pure: parsing and the next tick; claiming ticks in Redis is redis_periodic.py's job.
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

MISSED = ("skip", "run_once")


class ScheduleError(ValueError):
    """A [[schedules]] entry that cannot be used; the message names it."""


@dataclass(frozen=True)
class Schedule:
    name: str
    cron: str
    queue: str
    body: str
    timezone: str = "UTC"
    headers: dict[str, str] = field(default_factory=dict)
    missed: str = "skip"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def next_after(self, when_ms: int) -> int:
        """The first tick strictly after `when_ms` (unix ms), in unix ms."""
        from croniter import croniter  # (see parse_schedules)

        start = datetime.datetime.fromtimestamp(when_ms / 1000, tz=self.zone)
        return int(croniter(self.cron, start).get_next(float) * 1000)

    def job_id(self, tick_ms: int) -> str:
        """One id per tick: a tick enqueued twice by mistake is one job (SPEC 2.3)."""
        return f"schedule:{self.name}:{tick_ms}"


_KEYS = {"name", "cron", "queue", "body", "timezone", "headers", "missed"}


def parse_schedules(entries: Any, where: str = "schedules") -> tuple[Schedule, ...]:
    if not isinstance(entries, list):
        raise ScheduleError(f"{where} must be an array of tables ([[schedules]])")
    if not entries:
        return ()
    # Imported only when there are schedules: croniter and dateutil cost every broker's start ~40 ms.
    from croniter import croniter

    out: list[Schedule] = []
    for n, entry in enumerate(entries):
        at = f"{where}[{n}]"
        if not isinstance(entry, dict):
            raise ScheduleError(f"{at} must be a table")
        unknown = set(entry) - _KEYS
        if unknown:
            raise ScheduleError(f"{at}: unknown key(s) {sorted(unknown)}")
        for key in ("name", "cron", "queue", "body"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ScheduleError(f"{at}: '{key}' must be a non-empty string")
        name = entry["name"]
        if any(s.name == name for s in out):
            raise ScheduleError(f"{at}: a second schedule named '{name}'")
        if not croniter.is_valid(entry["cron"]):
            raise ScheduleError(f"{at} ({name}): '{entry['cron']}' is not a cron expression croniter reads")
        timezone = entry.get("timezone", "UTC")
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise ScheduleError(f"{at} ({name}): unknown time zone {timezone!r}") from None
        headers = entry.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ScheduleError(f"{at} ({name}): 'headers' must be a table of strings")
        missed = entry.get("missed", "skip")
        if missed not in MISSED:
            raise ScheduleError(f"{at} ({name}): 'missed' must be one of {', '.join(MISSED)}, got {missed!r}")
        out.append(Schedule(name, entry["cron"], entry["queue"], entry["body"], timezone, dict(headers), missed))
    return tuple(out)
