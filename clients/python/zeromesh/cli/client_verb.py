# SPDX-License-Identifier: MIT
"""What every verb that talks to the broker shares: its common flags, its Client, its
arguments, and how an error becomes an exit status.

Exit statuses of client verbs: 0 ok, 1 error, 2 timeout, 3 no responders (see fail()).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from . import env

Verb = Callable[[argparse.Namespace], int]

CURVE_HELP = (
    "With a secured broker: ZEROMESH_CURVE_SERVER (the broker's public key, 40 Z85 characters or its "
    "certificate file; comma-separated, one per endpoint) and ZEROMESH_CURVE_SECRET (this client's "
    "NAME.key_secret)."
)
"""The two CURVE settings, for the --help of every verb that connects to a broker."""


def add(
    verbs: Any, name: str, func: Verb, summary: str, description: str, json_flag: bool = False
) -> argparse.ArgumentParser:
    """Register a client verb: --endpoint (and --json when it prints data); main() turns its errors into statuses."""
    p = verbs.add_parser(name, help=summary, description=description, epilog=CURVE_HELP)
    p.add_argument("--endpoint", help="broker endpoint (overrides ZEROMESH_BROKER)")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=func, client_verb=True)
    return p


def add_header_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--header", action="append", metavar="KEY=VALUE", help="add a header (repeatable)")


def connect(args: argparse.Namespace) -> Any:
    """A thread-mode Client for the verb's --endpoint (and --pub), else the environment's."""
    from zeromesh.client import Client

    endpoint, pub = env.endpoints()
    given = args.endpoint and env.endpoint_list("--endpoint", args.endpoint)
    given_pub = getattr(args, "pub", None) and env.endpoint_list("--pub", args.pub)
    from zeromesh.protocol.curve_certs import CertificateError

    try:
        return Client(given or endpoint, given_pub or pub, green=False, failover_s=env.failover_s())
    except CertificateError as exc:  # a CURVE setting that cannot be used: the message names it
        raise SystemExit(f"zeromesh: {exc}") from None


def body(arg: str | None) -> bytes:
    """The BODY argument as UTF-8, or standard input when it is omitted or '-'."""
    if arg is None or arg == "-":
        return sys.stdin.buffer.read()
    return arg.encode("utf-8")


def headers(pairs: list[str] | None) -> dict[str, str]:
    """--header KEY=VALUE flags as a dict."""
    found = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"zeromesh: --header wants KEY=VALUE, got {pair!r}")
        found[key] = value
    return found


def print_result(args: argparse.Namespace, value: Any, human: Callable[[Any], str]) -> None:
    """JSON with --json, else the human form."""
    from zeromesh import display

    print(display.to_json(value) if args.json else human(value))


def confirm_sent(client: Any) -> Exception | None:
    """None once the broker has taken everything this client sent, else the reason it has not.

    A publish has no answer of its own; a ping answered on the same socket means what went
    before it arrived (one connection keeps order). When the ping fails, what is still queued
    is dropped at close, so that it cannot reach a broker that comes up after we said it did not.
    """
    from zeromesh.errors import ZeromeshError

    try:
        client.ping()
    except ZeromeshError as exc:
        client.linger = 0
        return exc
    return None


def fail(exc: Exception, what: str = "") -> int:
    """Print the error (after `what` did not happen, if given); return the verb's exit status."""
    from zeromesh import errors

    if isinstance(exc, errors.RemoteError) and exc.traceback:
        print(exc.traceback.rstrip(), file=sys.stderr)
    print(f"zeromesh: {what + ': ' if what else ''}{exc}", file=sys.stderr)
    if isinstance(exc, errors.TimeoutError):
        return 2
    if isinstance(exc, errors.NoRespondersError):
        return 3
    return 1
