# SPDX-License-Identifier: MIT
"""The `zeromesh` command: the composition root.

The only code that reads the environment (env.py) and argv, and wires the broker, the
nodes and the client together. One module per group of verbs: servers (broker, redis),
queues (push, request), pubsub (publish, subscribe, feature, invalidate), admin (status,
trace, dead-letters), nodes (node render, edge), keys (CURVE certificates), console (the
web console); client_verb holds what the verbs that talk to the broker share. Verb modules
import what they run inside their functions, so that `zeromesh node` can patch gevent
before any of it is loaded.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import admin, client_verb, console, env, jobs, keys, nodes, pubsub, queues, servers
from .logs import setup_logging


class _ShowVersion(argparse.Action):
    """--version: the installed version, looked up only when asked for (see zeromesh.__getattr__)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        import zeromesh

        print(f"zeromesh {zeromesh.__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zeromesh", description="zeromesh: a ZeroMQ service mesh")
    parser.add_argument("--version", action=_ShowVersion)
    parser.add_argument(
        "--log-level", default=env.log_level(), help="DEBUG, INFO, WARNING or ERROR (env ZEROMESH_LOG_LEVEL)"
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    # In the order `zeromesh --help` lists them.
    servers.add_verbs(verbs)  # broker, redis
    queues.add_verbs(verbs)  # push, request
    pubsub.add_publish_verbs(verbs)  # publish, subscribe
    admin.add_verbs(verbs)  # status, trace, dead-letters
    jobs.add_verbs(verbs)  # queue, scheduled, cancel, schedules
    nodes.add_node_verb(verbs)  # node render
    pubsub.add_node_control_verbs(verbs)  # feature, invalidate
    nodes.add_edge_verb(verbs)  # edge
    keys.add_verbs(verbs)  # keys new, keys show
    console.add_verbs(verbs)  # console
    return parser


def main(argv: list[str] | None = None) -> int:
    if nodes.wants_gevent(sys.argv[1:] if argv is None else argv):
        nodes.patch_gevent()  # before the verb imports anything that does I/O
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `zeromesh status | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        from zeromesh.errors import ZeromeshError

        if getattr(args, "client_verb", False) and isinstance(exc, ZeromeshError):
            return client_verb.fail(exc)
        raise


__all__ = ["build_parser", "main", "setup_logging"]
