# SPDX-License-Identifier: MIT
"""One edge process: wire the parts together and serve until SIGTERM.

The caller (the `zeromesh edge` command) reads the environment and argv,
and must have run gevent's monkey.patch_all() before anything else.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from zeromesh.endpoints import FAILOVER_S

from . import defaults
from .routes import RouteError, RouteTable, load_routes

log = logging.getLogger("zeromesh.edge")


@dataclass(frozen=True)
class EdgeOptions:
    listen: str = defaults.LISTEN
    routes: str | None = None  # None: defaults.ROUTES_FILE if it exists, else no routes
    broker: str | None = None  # None: the client's defaults
    pub: str | None = None
    redis_url: str = ""  # "": no Redis (no replay; a gap flushes the cache)
    reuse_port: bool = False  # one of several processes on the port (set by the supervisor)
    access_log: bool = False
    catchup_s: float = defaults.CATCHUP_S
    failover_s: float = FAILOVER_S  # the client moves to the next broker of `broker` after this long


def read_routes(options: EdgeOptions) -> RouteTable:
    """The route table, or RouteError. An absent default file is an empty table, not an error."""
    if options.routes is None:
        if not Path(defaults.ROUTES_FILE).exists():
            log.warning(
                "no %s here and no --routes: only /healthz, /readyz, /metrics and /events are served",
                defaults.ROUTES_FILE,
            )
            return RouteTable()
        return load_routes(defaults.ROUTES_FILE)
    return load_routes(options.routes)


def require_patched() -> None:
    from zeromesh.realthreads import gevent_patched

    if not gevent_patched("socket"):
        raise RuntimeError(
            "the edge runs under gevent: call gevent.monkey.patch_all() first thing in the "
            "entry point (the `zeromesh edge` command does)"
        )


def serve(options: EdgeOptions) -> int:
    """Serve until SIGTERM or SIGINT; 0 after a clean stop, 2 on a configuration error."""
    require_patched()
    import gevent
    import gevent.event

    from zeromesh import Client
    from zeromesh.nodes.features import FeatureSwitches

    from .app import make_app
    from .cache import PageCache
    from .invalidation import Invalidator, StreamUnavailable
    from .listener import TOPICS, Listener
    from .metrics import EdgeMetrics
    from .redis_store import RedisStore, connect, redact
    from .server import listen, make_server
    from .sse import EventStreams

    try:
        routes = read_routes(options)
        # A malformed ZEROMESH_REDIS_URL (ValueError) stops the edge here, with the reason.
        store = RedisStore(connect(options.redis_url)) if options.redis_url else None
        listener_sock = listen(options.listen, reuse_port=options.reuse_port)
    except (RouteError, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    try:
        client = Client(options.broker, options.pub, green=True, failover_s=options.failover_s)
    except ValueError as exc:  # a CURVE setting it cannot use: the message names it
        log.error("%s", exc)
        listener_sock.close()
        return 2
    metrics = EdgeMetrics()
    cache = PageCache(clock=time.monotonic)
    features = FeatureSwitches()
    if store is not None:
        try:
            store.load_features(features)
        except StreamUnavailable as exc:
            log.warning(
                "redis at %s unavailable (%s): serving without feature switches from Redis and "
                "without invalidation replay until it answers",
                redact(options.redis_url),
                exc,
            )
    invalidator = Invalidator(cache, store, metrics, sleep=gevent.sleep)
    invalidator.start()
    streams = EventStreams(client, metrics)
    app = make_app(
        client, routes, cache, time.monotonic, features=features, metrics=metrics, streams=streams, store=store
    )
    coherence = Listener(client.subscribe(*TOPICS), invalidator, features, store, options.catchup_s).start()
    server = make_server(listener_sock, app, metrics, access=options.access_log)

    stopping = gevent.event.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stopping.set)
    # Everything made so far lives as long as the process: keep it out of the collector's full passes,
    # which otherwise stalled every request in flight for 20 ms or more now and then (p99).
    gc.freeze()
    server.start()
    log.info(
        "edge %d listening on http://%s with %d route(s); broker %s",
        os.getpid(),
        options.listen,
        len(routes),
        client.endpoint,
    )
    stopping.wait()
    log.info("edge %d stopping", os.getpid())
    streams.close()
    server.stop(timeout=defaults.STOP_GRACE_S)
    coherence.stop()
    client.close()
    return 0
