# SPDX-License-Identifier: MIT
"""`zeromesh console`: the web console (docs/CONSOLE.md)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from . import client_verb, env

DEFAULT_HTTP = "127.0.0.1:8090"


def _password(args: argparse.Namespace) -> str:
    """--password-file, else ZEROMESH_CONSOLE_PASSWORD, else a new one printed once on stderr."""
    from zeromesh.console import auth

    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as f:
                given = f.read().strip()
        except OSError as exc:
            raise SystemExit(f"zeromesh console: --password-file: {exc}") from None
        if not given:
            raise SystemExit(f"zeromesh console: --password-file {args.password_file} is empty")
        return given
    given = os.environ.get("ZEROMESH_CONSOLE_PASSWORD", "")
    if given:
        return given
    made = auth.new_password()
    print(f"zeromesh console: admin password for this run (user admin): {made}", file=sys.stderr, flush=True)
    return made


def cmd_console(args: argparse.Namespace) -> int:
    from zeromesh.cli.nodes import patch_gevent

    patch_gevent()  # before the console opens any socket
    from zeromesh.console import auth
    from zeromesh.console.app import Settings
    from zeromesh.console.server import ConsoleOptions, serve
    from zeromesh.endpoints import parse
    from zeromesh.nodes.feature_switch import Switchboard

    host, sep, port = args.http.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise SystemExit(f"zeromesh console: --http wants HOST:PORT, got {args.http!r}")
    seeds = parse(args.endpoint and env.endpoint_list("--endpoint", args.endpoint) or env.broker_endpoint())
    url = env.redis_url()
    settings = Settings(
        password=_password(args),
        secret=auth.new_secret(),
        reads_need_password=not auth.is_loopback(host),
        switches=Switchboard(env.redis_client(url), env.redacted(url) if url else "Redis"),
    )
    return serve(
        ConsoleOptions(
            host=host.strip("[]"),
            port=int(port),
            seeds=seeds,
            settings=settings,
            curve_server=os.environ.get("ZEROMESH_CURVE_SERVER") or None,
        )
    )


def add_verbs(verbs: Any) -> None:
    """Register console."""
    p = client_verb.add(
        verbs,
        "console",
        cmd_console,
        "serve the web console",
        "Serve the operator's web console on --http (default 127.0.0.1:8090): overview, queues, services, "
        "workers, dead letters, scheduled jobs, feature switches and traces, live over SSE. It polls every "
        "broker given (ZEROMESH_BROKER or --endpoint) and every broker their registry lists. Actions need "
        "the admin password (HTTP Basic, user admin): ZEROMESH_CONSOLE_PASSWORD or --password-file; "
        "without either one is made and printed once on standard error. Bound to a non-loopback address, "
        "every page needs it. Feature switches: ZEROMESH_REDIS_URL as for the nodes.",
    )
    p.add_argument(
        "--http",
        default=os.environ.get("ZEROMESH_CONSOLE_HTTP") or DEFAULT_HTTP,
        metavar="HOST:PORT",
        help=f"listen here (env ZEROMESH_CONSOLE_HTTP; default {DEFAULT_HTTP})",
    )
    p.add_argument("--password-file", metavar="FILE", help="the admin password (first line)")
