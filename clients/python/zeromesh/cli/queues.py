# SPDX-License-Identifier: MIT
"""`zeromesh push` (a job on a queue) and `zeromesh request` (a call to a service)."""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from typing import Any

from zeromesh.protocol import defaults

from . import client_verb


def cmd_push(args: argparse.Namespace) -> int:
    try:
        delay = _duration(args.in_) if args.in_ else None
        at = _instant(args.at) if args.at else None
        unique_ttl = _duration(args.unique_ttl) if args.unique_ttl else None
    except ValueError as exc:
        print(f"zeromesh push: {exc}", file=sys.stderr)
        return 2
    if args.lines is not None:
        return _push_lines(args, delay, at)
    with client_verb.connect(args) as client:
        jid = client.push(
            args.queue,
            client_verb.body(args.body),
            client_verb.headers(args.header),
            timeout=args.timeout,
            delay=delay,
            at=at,
            unique_key=args.unique,
            unique_ttl=unique_ttl,
        )
        print(jid)
    return 0


def _push_lines(args: argparse.Namespace, delay: float | None, at: datetime.datetime | None) -> int:
    """push --lines FILE: one job per line, ids printed as they are confirmed, progress on a terminal."""
    from .bulk import push_lines
    from .progress import Progress

    if args.body is not None or args.unique:
        print("zeromesh push: --lines takes the bodies from FILE: give no BODY and no --unique", file=sys.stderr)
        return 2
    if delay is not None or at is not None:
        print("zeromesh push: --lines pushes now; schedule single jobs with --in/--at", file=sys.stderr)
        return 2
    try:
        source = sys.stdin.buffer if args.lines == "-" else open(args.lines, "rb")  # noqa: SIM115 closed below
    except OSError as exc:
        print(f"zeromesh push: cannot read {args.lines}: {exc.strerror}", file=sys.stderr)
        return 2
    progress = Progress(f"pushing to {args.queue}", None, force=args.progress)
    try:
        with client_verb.connect(args) as client:
            n = push_lines(
                client, args.queue, source, client_verb.headers(args.header), args.timeout, progress, sys.stdout
            )
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    print(f"pushed {n} job(s) to {args.queue}", file=sys.stderr)
    return 0


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(text: str) -> float:
    """10, 1.5s, 10m, 2h, 3d -> seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?", text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration (like 90, 10m, 2h, 3d)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def _instant(text: str) -> datetime.datetime:
    """An ISO 8601 time with its offset (2026-12-25T08:00:00+01:00, or Z for UTC)."""
    try:
        at = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (like 2026-12-25T08:00:00+01:00)") from None
    if at.utcoffset() is None:
        raise ValueError(f"{text!r} has no offset: say which zone (+01:00, Z...), a time alone is ambiguous")
    return at


def cmd_request(args: argparse.Namespace) -> int:
    with client_verb.connect(args) as client:
        body = client.request(
            args.service,
            client_verb.body(args.body),
            timeout=args.timeout,
            wait=args.wait,
            headers=client_verb.headers(args.header),
        )
    out = sys.stdout.buffer
    out.write(body)
    # Like redis-cli on a terminal: the prompt starts on a line of its own. Piped or redirected,
    # the reply is written byte for byte, as curl does.
    if sys.stdout.isatty() and not body.endswith(b"\n"):
        out.write(b"\n")
    out.flush()
    return 0


def add_verbs(verbs: Any) -> None:
    """Register push and request."""
    p = client_verb.add(
        verbs, "push", cmd_push, "queue a job", "Queue a job on QUEUE and print its id once the broker confirmed it."
    )
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("body", metavar="BODY", nargs="?", help="job body; standard input if omitted or '-'")
    client_verb.add_header_flag(p)
    p.add_argument(
        "--timeout",
        type=float,
        default=defaults.PUSH_TIMEOUT_S,
        help="seconds to wait for the confirmation (default %(default)s)",
    )
    when = p.add_mutually_exclusive_group()
    when.add_argument("--in", dest="in_", metavar="DURATION", help="run it this long from now: 90, 10m, 2h, 3d")
    when.add_argument("--at", metavar="TIME", help="run it at this instant: 2026-12-25T08:00:00+01:00")
    p.add_argument(
        "--unique",
        metavar="KEY",
        help="queue it only if no other job holds KEY (held until done); prints the holder's id otherwise",
    )
    p.add_argument("--unique-ttl", metavar="DURATION", help="with --unique: hold KEY this long instead")
    p.add_argument(
        "--lines",
        metavar="FILE",
        help="push one job per line of FILE ('-': standard input; blank lines skipped), printing each id once "
        "confirmed and a count at the end",
    )
    p.add_argument("--progress", action="store_true", help="with --lines: show progress even when not on a terminal")

    p = client_verb.add(
        verbs,
        "request",
        cmd_request,
        "call a service",
        "Send BODY to one worker of SERVICE and write the reply body to standard output: byte for byte "
        "when it is a pipe or a file; on a terminal, followed by a newline if it does not end in one. "
        "Exit 1 on a remote or broker error, 2 on timeout, 3 when no worker serves SERVICE.",
    )
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("body", metavar="BODY", nargs="?", help="request body; standard input if omitted or '-'")
    client_verb.add_header_flag(p)
    p.add_argument(
        "--timeout",
        type=float,
        default=defaults.REQUEST_TIMEOUT_S,
        help="seconds before giving up (default %(default)s)",
    )
    p.add_argument("--wait", action="store_true", help="wait for a worker instead of failing with no responders")
