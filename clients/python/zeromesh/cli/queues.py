# SPDX-License-Identifier: MIT
"""`zeromesh push` (a job on a queue) and `zeromesh request` (a call to a service)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from zeromesh.protocol import defaults

from . import client_verb


def cmd_push(args: argparse.Namespace) -> int:
    with client_verb.connect(args) as client:
        print(
            client.push(args.queue, client_verb.body(args.body), client_verb.headers(args.header), timeout=args.timeout)
        )
    return 0


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
