# SPDX-License-Identifier: MIT
"""Run the console: the poller, the Jinja environment, the app, on gevent's pywsgi.
The caller (the CLI) has monkey-patched gevent and read the environment."""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from typing import Any

import gevent
from gevent import pywsgi
from jinja2 import Environment, PackageLoader, select_autoescape

from .app import SOCKET_KEY, ConsoleApp, Settings
from .poller import STATUS_TIMEOUT_S, Poller
from .sse import Streams

log = logging.getLogger("zeromesh.console")


class Handler(pywsgi.WSGIHandler):
    """pywsgi's handler, handing the app the connection (SSE streams watch it for a hang-up)."""

    def get_environ(self) -> dict:
        environ = super().get_environ()
        environ[SOCKET_KEY] = self.socket
        return environ


@dataclass
class ConsoleOptions:
    host: str
    port: int
    seeds: list[str]  # broker endpoints given; the registry adds the others
    settings: Settings
    curve_server: str | None = None  # a key per seed endpoint (comma-separated) or one for all
    max_streams: int = 16


def curve_key_for(curve_server: str | None, seeds: list[str], endpoint: str) -> str | None:
    """The broker public key to use for `endpoint`: the one given for it when the setting lists one
    per seed endpoint, else the only one (None: the environment's, or no CURVE)."""
    if not curve_server:
        return None
    keys = curve_server.split(",")
    if len(keys) > 1 and endpoint in seeds and len(keys) == len(seeds):
        return keys[seeds.index(endpoint)]
    return keys[0]


def make_app(opts: ConsoleOptions) -> tuple[ConsoleApp, Poller]:
    from zeromesh.client import Client

    def make_client(endpoint: str) -> Any:
        return Client(
            endpoint,
            green=True,
            admin_timeout=STATUS_TIMEOUT_S,
            failover_s=60.0,
            curve_server=curve_key_for(opts.curve_server, opts.seeds, endpoint),
        )

    poller = Poller(opts.seeds, make_client)
    jinja = Environment(loader=PackageLoader(__package__, "templates"), autoescape=select_autoescape(default=True))
    jinja.filters["when"] = when
    return ConsoleApp(poller, jinja, opts.settings, Streams(poller, opts.max_streams)), poller


def when(ms: Any) -> str:
    """An instant in ms since the epoch as local date and time; blank when unknown."""
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def serve(opts: ConsoleOptions) -> int:
    from zeromesh.green_pool import require_patched

    require_patched()  # greenlets that never yield would freeze every page behind one slow broker
    app, poller = make_app(opts)
    server = pywsgi.WSGIServer((opts.host, opts.port), app, log=None, error_log=log, handler_class=Handler)
    server.start()
    poller.start()
    log.info("console on http://%s:%d/ (brokers: %s)", opts.host, server.server_port, ", ".join(opts.seeds))
    stop = gevent.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stop.set)
    stop.wait()
    log.info("console stopping")
    server.stop(timeout=1)
    poller.stop()
    return 0
