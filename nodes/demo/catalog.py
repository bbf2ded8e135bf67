# SPDX-License-Identifier: MIT
"""The demo's ecards: an in-process catalog, and what a sent card looks like.

Pure data and functions (no sockets), so the services in workers.py stay thin
and the tests can check the rules directly.
"""

from __future__ import annotations

import builtins
import datetime
import json
import time
import zoneinfo
from typing import Any
from urllib.parse import parse_qs

SEED: list[dict[str, Any]] = [
    {
        "id": "1",
        "title": "Happy Birthday",
        "symbol": "✦",
        "category": "birthday",
        "colors": ["#ff7a59", "#ffc15e"],
        "tagline": "Another trip around the sun",
        "verse": "May your year be as bright as the candles on your cake.",
    },
    {
        "id": "2",
        "title": "Thank You",
        "symbol": "♥",
        "category": "gratitude",
        "colors": ["#e0457b", "#f59bb8"],
        "tagline": "Because you made a difference",
        "verse": "Some kindnesses are too big for words. This card will have to do.",
    },
    {
        "id": "3",
        "title": "Congratulations",
        "symbol": "★",
        "category": "celebration",
        "colors": ["#6a4cff", "#b69cff"],
        "tagline": "You did it!",
        "verse": "All that work paid off. Time to celebrate properly.",
    },
    {
        "id": "4",
        "title": "Get Well Soon",
        "symbol": "☀",
        "category": "care",
        "colors": ["#1fa88a", "#8fe3c9"],
        "tagline": "Sunny days ahead",
        "verse": "Rest up, drink your tea, and come back to us soon.",
    },
    {
        "id": "5",
        "title": "Happy Holidays",
        "symbol": "❄",
        "category": "holiday",
        "colors": ["#1f6fd1", "#8cc3ff"],
        "tagline": "Warm wishes for a cold season",
        "verse": "Wishing you a quiet evening, a full table and good company.",
    },
    {
        "id": "6",
        "title": "Thinking of You",
        "symbol": "✿",
        "category": "care",
        "colors": ["#a855c7", "#e2b3f2"],
        "tagline": "Just because",
        "verse": "No reason at all. You were on my mind, so here is a card.",
    },
    {
        "id": "7",
        "title": "Good Luck",
        "symbol": "♣",
        "category": "celebration",
        "colors": ["#3a9d3a", "#a7dd8b"],
        "tagline": "Knock them dead",
        "verse": "You are more ready than you think. Go get it.",
    },
    {
        "id": "8",
        "title": "Welcome Home",
        "symbol": "⌂",
        "category": "holiday",
        "colors": ["#c0742c", "#f3c38b"],
        "tagline": "The door is always open",
        "verse": "The kettle is on and your chair is where you left it.",
    },
]

SUMMARY_FIELDS = ("id", "title", "symbol", "category", "colors", "tagline", "sent")

MAX_FIELD = 200
"""Longest name accepted in a sent card (the message may be longer)."""

MAX_MESSAGE = 1000


class Catalog:
    """Cards by id, with how often each was sent. Single-threaded (one gevent hub)."""

    def __init__(self, seed: list[dict[str, Any]] = SEED) -> None:
        self.cards = {c["id"]: {**c, "sent": 0} for c in seed}

    def list(self) -> list[dict[str, Any]]:
        return [{k: c[k] for k in SUMMARY_FIELDS} for c in self.cards.values()]

    def get(self, card_id: str) -> dict[str, Any] | None:
        card = self.cards.get(str(card_id))
        return dict(card) if card else None

    def related(self, card_id: str, n: int = 3) -> builtins.list[dict[str, Any]]:
        """Cards of the same category first, then the most sent ones."""
        card = self.cards.get(str(card_id))
        others = [c for c in self.cards.values() if c["id"] != str(card_id)]
        others.sort(key=lambda c: (card is None or c["category"] != card["category"], -c["sent"], int(c["id"])))
        return [{k: c[k] for k in ("id", "title", "symbol", "colors")} for c in others[:n]]

    def record_sent(self, card_id: str) -> int:
        card = self.cards[card_id]
        card["sent"] += 1
        return card["sent"]


class BadSend(ValueError):
    """A send job that can never succeed (dead-letter it)."""


def parse_send(body: bytes, content_type: str = "") -> dict[str, str]:
    """A send job's body: a form post (application/x-www-form-urlencoded) or JSON."""
    text = body.decode("utf-8", "replace").strip()
    if "json" in content_type or text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise BadSend("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BadSend("the body must be a JSON object")
        fields = {k: str(v) for k, v in data.items()}
    else:
        fields = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    card_id = fields.get("card_id", "").strip()
    if not card_id:
        raise BadSend("card_id is missing")
    sent = {
        "card_id": card_id,
        "to": fields.get("to", "").strip()[:MAX_FIELD] or "a friend",
        "from": fields.get("from", "").strip()[:MAX_FIELD] or "someone",
        "message": fields.get("message", "").strip()[:MAX_MESSAGE],
        "deliver_at": deliver_at(fields.get("deliver_on", ""), fields.get("timezone", "")),
    }
    return sent


TIMEZONES = ("UTC", "Europe/London", "Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Tokyo")
"""The recipient's zones the send form offers: "deliver on 25 December at 08:00" is their morning."""


def deliver_at(local: str, zone: str) -> str:
    """The form's "deliver on" (a date and time as the recipient reads a clock) in the recipient's
    zone -> an ISO 8601 instant with its offset; "" for "now" (no date, or a time already past)."""
    local = local.strip()
    if not local:
        return ""
    zone = zone.strip() or "UTC"
    if zone not in TIMEZONES:
        raise BadSend(f"unknown time zone {zone!r}")
    try:
        naive = datetime.datetime.fromisoformat(local)
    except ValueError:
        raise BadSend(f"deliver_on must be a date and time like 2026-12-25T08:00, got {local!r}") from None
    if naive.tzinfo is not None:
        raise BadSend("deliver_on is a wall-clock time; give the zone in timezone")
    at = naive.replace(tzinfo=zoneinfo.ZoneInfo(zone))
    if at <= datetime.datetime.now(datetime.UTC):
        return ""
    return at.isoformat()


def sent_event(sent: dict[str, str], card: dict[str, Any], job_id: str) -> dict[str, Any]:
    """What `cards.sent` carries (JSON) and the Redis list keeps."""
    return {
        "job": job_id,
        "card_id": sent["card_id"],
        "title": card["title"],
        "symbol": card["symbol"],
        "to": sent["to"],
        "from": sent["from"],
        "message": sent["message"],
        "sent": card["sent"],
        "at": round(time.time(), 3),
    }


def times_sent(n: int) -> str:
    """ "sent 1 time", "sent 2 times" (the templates say the same)."""
    return f"sent {n} time" + ("" if n == 1 else "s")


def sent_summary(event: dict[str, Any]) -> str:
    """One line for the raw queue the demo's log consumer reads (the Ruby send worker writes the same)."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["at"]))
    line = (
        f"{when} card {event['card_id']} ({event['title']}) from {event['from']} to {event['to']}"
        f", {times_sent(event['sent'])}, job {event['job']}"
    )
    return " ".join(line.split())  # one line, whatever the names held
