# SPDX-License-Identifier: MIT
"""`zeromesh status`, `zeromesh trace ID` and `zeromesh dead-letters list|replay|purge QUEUE`."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from . import client_verb


def cmd_status(args: argparse.Namespace) -> int:
    from zeromesh import display

    with client_verb.connect(args) as client:
        if not args.watch:
            client_verb.print_result(args, client.status(), display.status_text)
            return 0
        shown = 0
        try:
            while True:
                text = display.status_text(client.status())
                # Redraw in place on a terminal (home, then clear to the end); piped, one after another.
                head = "\x1b[H\x1b[J" if sys.stdout.isatty() else ("\n" if shown else "")
                print(f"{head}{text}\n\n(every {args.watch:g}s; Ctrl-C stops)", flush=True)
                shown += 1
                if args.times and shown >= args.times:
                    return 0
                time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from zeromesh import tracing

    by = "trace" if args.trace else "id"
    with client_verb.connect(args) as client:
        found = tracing.collect(client, args.id, by=by)
    if found["state"] is None and not found["events"]:
        print(
            f"zeromesh: not_found: no broker knows the {'trace' if args.trace else 'message'} {args.id!r}",
            file=sys.stderr,
        )
        return 1
    if args.json:  # the state's fields at the top, as before the timeline existed
        rest = {k: found[k] for k in ("events", "brokers", "errors")}
        client_verb.print_result(args, {**(found["state"] or {}), **rest}, str)
    elif args.trace:
        print(f"{tracing.tree_text(found['events'])}\n\n{tracing.timeline_text(found, show_ids=True)}")
    else:
        print(tracing.timeline_text(found))
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from zeromesh import display

    args.id = (args.id or []) + args.ids  # show QUEUE ID and show QUEUE --id ID say the same
    if args.id and args.action == "list":
        print("zeromesh dead-letters list: takes no ID (show QUEUE ID shows one)", file=sys.stderr)
        return 2
    with client_verb.connect(args) as client:
        if args.action == "list":
            items = client.dead_letters(args.queue, limit=args.limit)
            client_verb.print_result(args, items, lambda v: display.dead_letters_text(args.queue, v))
        elif args.action == "show":
            if not args.id:
                print("zeromesh dead-letters show: give the dead letter's id (show QUEUE ID)", file=sys.stderr)
                return 2
            (item,) = client.dead_letters(args.queue, id=args.id[0])
            client_verb.print_result(args, item, display.mapping_text)
        elif args.action == "replay":
            n = _replay(client, args)
            client_verb.print_result(
                args, {"queue": args.queue, "replayed": n}, lambda v: f"replayed {n} dead letter(s)"
            )
        else:
            n = client.purge(args.queue, args.id or None)
            client_verb.print_result(args, {"queue": args.queue, "purged": n}, lambda v: f"purged {n} dead letter(s)")
    return 0


def _replay(client: Any, args: argparse.Namespace) -> int:
    """By id in one step; all of them in steps of ids, with progress on a terminal."""
    from .bulk import replay_all
    from .progress import Progress

    if args.id:
        return int(client.replay(args.queue, args.id))
    return replay_all(client, args.queue, Progress(f"replaying {args.queue}", None, force=args.progress))


def add_verbs(verbs: Any) -> None:
    """Register status, trace and dead-letters."""
    p = client_verb.add(
        verbs,
        "status",
        cmd_status,
        "show queues, services and workers",
        "Show the broker's queues (depth, in flight, dead letters, rates), services and workers.",
        json_flag=True,
    )
    p.add_argument("--watch", type=float, metavar="SECONDS", help="show it again every SECONDS, in place (like top)")
    p.add_argument("--times", type=int, default=0, metavar="N", help="with --watch: stop after N showings")

    p = client_verb.add(
        verbs,
        "trace",
        cmd_trace,
        "where is a job or request, and what happened to it",
        "Show where the job or request ID is (queued, in flight, dead letter, done) and its timeline: "
        "every event of every broker's trace log, merged. With --trace, ID is a trace id: the tree of its "
        "messages (by parent) and their timeline.",
        json_flag=True,
    )
    p.add_argument("id", metavar="ID")
    p.add_argument("--trace", action="store_true", help="ID is a trace id: show every message of that trace")

    p = client_verb.add(
        verbs,
        "dead-letters",
        cmd_dead_letters,
        "list, replay or purge dead letters",
        "list: show QUEUE's dead letters; show QUEUE ID: one of them with the start of its payload; "
        "replay: move them (all, or the IDs given) back to the tail of QUEUE with their attempts reset, "
        "all of them in steps of 1000 with progress on a terminal; purge: drop them (all, or the IDs given).",
        json_flag=True,
    )
    p.add_argument("action", choices=["list", "show", "replay", "purge"])
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("ids", metavar="ID", nargs="*", help="show: the dead letter to show; replay, purge: only these")
    p.add_argument("--limit", type=int, default=100, help="list at most this many (default %(default)s)")
    p.add_argument(
        "--id", action="append", metavar="ID", help="show: the dead letter to show; replay, purge: only these (repeat)"
    )
    p.add_argument("--progress", action="store_true", help="replay: show progress even when not on a terminal")
