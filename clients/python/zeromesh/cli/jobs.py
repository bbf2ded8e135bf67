# SPDX-License-Identifier: MIT
"""`zeromesh queue pause|resume|purge QUEUE`, `zeromesh scheduled QUEUE`, `zeromesh cancel ID`
and `zeromesh schedules`: the controls over waiting work (SPEC 12, 16.5-16.8)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from . import client_verb


def cmd_queue(args: argparse.Namespace) -> int:
    if args.action == "purge" and not args.yes:
        print(
            f"zeromesh queue purge: this drops every job waiting in '{args.queue}' (in the broker's memory "
            "and in Redis; jobs in flight finish). Add --yes to do it.",
            file=sys.stderr,
        )
        return 2
    with client_verb.connect(args) as client:
        if args.action == "purge":
            answer = client.admin("purge_queue", queue=args.queue)
            client_verb.print_result(
                args,
                answer,
                lambda v: (
                    f"purged {v['purged']} waiting job(s) from {args.queue} "
                    f"({v['in_memory']} in memory, {v['in_redis']} in Redis)"
                ),
            )
        else:
            answer = client.admin(args.action, queue=args.queue)
            client_verb.print_result(args, answer, lambda v: f"{args.queue} {'paused' if v['paused'] else 'resumed'}")
    return 0


def cmd_scheduled(args: argparse.Namespace) -> int:
    with client_verb.connect(args) as client:
        answer = client.admin("scheduled", queue=args.queue, limit=args.limit)
        client_verb.print_result(args, answer, _scheduled_text)
    return 0


def _scheduled_text(answer: dict) -> str:
    lines = [f"{answer['queue']}: {answer['total']} scheduled job(s)"]
    now = time.time() * 1000
    for item in answer["items"]:
        lines.append(f"  {item['due']}  (in {max(0.0, (item['due_ms'] - now) / 1000):.0f}s)  {item['id']}")
    return "\n".join(lines)


def cmd_cancel(args: argparse.Namespace) -> int:
    with client_verb.connect(args) as client:
        params: dict[str, Any] = {"id": args.id}
        if args.queue:
            params["queue"] = args.queue
        answer = client.admin("cancel", **params)
        client_verb.print_result(args, answer, lambda v: f"cancelled {v['id']} (queue {v['queue']})")
    return 0


def cmd_schedules(args: argparse.Namespace) -> int:
    with client_verb.connect(args) as client:
        answer = client.admin("schedules")
        client_verb.print_result(args, answer, _schedules_text)
    return 0


def _schedules_text(answer: dict) -> str:
    if not answer["schedules"]:
        return "no periodic schedules in the broker's config"
    lines = []
    for s in answer["schedules"]:
        lines.append(
            f"{s['name']}: '{s['cron']}' ({s['timezone']}) -> {s['queue']}; last {s['last'] or 'never'}; "
            f"next {s['next']}; missed ticks: {s['missed']}"
        )
    return "\n".join(lines)


def add_verbs(verbs: Any) -> None:
    """Register queue, scheduled, cancel and schedules."""
    p = client_verb.add(
        verbs,
        "queue",
        cmd_queue,
        "pause, resume or purge a queue",
        "pause: QUEUE keeps taking pushes and dispatches nothing, on every broker; resume: it dispatches "
        "again; purge: drop every job waiting in it (memory and Redis; jobs in flight finish), with --yes.",
        json_flag=True,
    )
    p.add_argument("action", choices=["pause", "resume", "purge"])
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("--yes", action="store_true", help="purge: really drop the waiting jobs")

    p = client_verb.add(
        verbs,
        "scheduled",
        cmd_scheduled,
        "list a queue's scheduled jobs",
        "List QUEUE's jobs scheduled for later, earliest first.",
        json_flag=True,
    )
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default %(default)s)")

    p = client_verb.add(
        verbs, "cancel", cmd_cancel, "cancel a scheduled job", "Cancel the scheduled job ID before it runs.",
        json_flag=True,
    )  # fmt: skip
    p.add_argument("id", metavar="ID")
    p.add_argument("--queue", help="its queue (default: look in every queue with scheduled jobs)")

    p = client_verb.add(
        verbs,
        "schedules",
        cmd_schedules,
        "list the periodic schedules",
        "List the broker's [[schedules]] with each one's last run (by any broker) and next tick.",
        json_flag=True,
    )
    p.add_argument("action", nargs="?", choices=["list"], default="list", help="list (the default)")
