# SPDX-License-Identifier: MIT
"""`zeromesh status`, `zeromesh trace ID` and `zeromesh dead-letters list|replay|purge QUEUE`."""

from __future__ import annotations

import argparse
from typing import Any

from . import client_verb


def cmd_status(args: argparse.Namespace) -> int:
    from zeromesh import display

    with client_verb.connect(args) as client:
        client_verb.print_result(args, client.status(), display.status_text)
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from zeromesh import display

    with client_verb.connect(args) as client:
        client_verb.print_result(args, client.trace(args.id), display.mapping_text)
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from zeromesh import display

    with client_verb.connect(args) as client:
        if args.action == "list":
            items = client.dead_letters(args.queue, limit=args.limit)
            client_verb.print_result(args, items, lambda v: display.dead_letters_text(args.queue, v))
        elif args.action == "replay":
            n = client.replay(args.queue)
            client_verb.print_result(
                args, {"queue": args.queue, "replayed": n}, lambda v: f"replayed {n} dead letter(s)"
            )
        else:
            n = client.purge(args.queue)
            client_verb.print_result(args, {"queue": args.queue, "purged": n}, lambda v: f"purged {n} dead letter(s)")
    return 0


def add_verbs(verbs: Any) -> None:
    """Register status, trace and dead-letters."""
    client_verb.add(
        verbs,
        "status",
        cmd_status,
        "show queues, services and workers",
        "Show the broker's queues (depth, in flight, dead letters, rates), services and workers.",
        json_flag=True,
    )

    p = client_verb.add(
        verbs,
        "trace",
        cmd_trace,
        "where is a job or request",
        "Show where the job or request ID is: queued, in flight, dead letter or done.",
        json_flag=True,
    )
    p.add_argument("id", metavar="ID")

    p = client_verb.add(
        verbs,
        "dead-letters",
        cmd_dead_letters,
        "list, replay or purge dead letters",
        "list: show QUEUE's dead letters; replay: move them back to the tail of QUEUE with their "
        "attempts reset; purge: drop them.",
        json_flag=True,
    )
    p.add_argument("action", choices=["list", "replay", "purge"])
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("--limit", type=int, default=100, help="list at most this many (default %(default)s)")
