# SPDX-License-Identifier: MIT
"""The `zeromesh` command. The only place that reads the environment and argv."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from zeromesh.protocol import defaults


def env_endpoints() -> tuple[str, str]:
    return (
        os.environ.get("ZEROMESH_BROKER", defaults.BROKER_ENDPOINT),
        os.environ.get("ZEROMESH_PUB", defaults.PUB_ENDPOINT),
    )


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def cmd_broker(args: argparse.Namespace) -> int:
    from zeromesh.broker.config import ConfigError, load_config
    from zeromesh.broker.server import serve

    endpoint, pub = env_endpoints()
    try:
        max_message = int(os.environ.get("ZEROMESH_MAX_MESSAGE", defaults.MAX_MESSAGE))
        config = load_config(args.config, endpoint=args.endpoint or endpoint, pub_endpoint=args.pub or pub,
                             max_message=max_message)
    except (ConfigError, ValueError) as exc:
        print(f"zeromesh broker: {exc}", file=sys.stderr)
        return 2
    return serve(config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zeromesh", description="zeromesh: a ZeroMQ service mesh")
    parser.add_argument("--log-level", default=os.environ.get("ZEROMESH_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (env ZEROMESH_LOG_LEVEL)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    p = verbs.add_parser("broker", help="run the broker",
                         description="Run the broker: ROUTER on ZEROMESH_BROKER, PUB on ZEROMESH_PUB.")
    p.add_argument("--config", help="broker config file (TOML); see docs/CONFIG.md")
    p.add_argument("--endpoint", help="override ZEROMESH_BROKER")
    p.add_argument("--pub", help="override ZEROMESH_PUB")
    p.set_defaults(func=cmd_broker)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
