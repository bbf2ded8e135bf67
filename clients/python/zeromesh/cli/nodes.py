# SPDX-License-Identifier: MIT
"""`zeromesh node render` and `zeromesh edge`: the gevent processes of the mesh.

Redis (feature switches, invalidation replay): env.redis_url(), ZEROMESH_REDIS_URL; unset
means the embedded server's socket `unix://$ZEROMESH_DATA_DIR/redis.sock` (ZEROMESH_DATA_DIR
defaults to var/redis, relative to the working directory), as `zeromesh redis` and the
broker use it; `none` means no Redis.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any

from . import client_verb, env

log = logging.getLogger("zeromesh.cli")


def wants_gevent(argv: list[str]) -> bool:
    """True when the verb is `node`: patch_all() must then run before anything else."""
    args = iter(argv)
    for arg in args:
        if arg == "--log-level":
            next(args, None)
        elif not arg.startswith("-"):
            return arg == "node"
    return False


def patch_gevent() -> None:
    from gevent import monkey

    monkey.patch_all()


def cmd_node_render(args: argparse.Namespace) -> int:
    from zeromesh.green_pool import require_patched
    from zeromesh.nodes.pages import load_site
    from zeromesh.nodes.render import RenderNode

    require_patched()  # main() patched before importing anything else for this verb
    endpoint, pub = env.endpoints()
    url = env.redis_url()
    label = args.label or f"{args.service}@{socket.gethostname()}:{os.getpid()}"
    try:
        site = load_site(args.site_module)
        node = RenderNode.build(
            args.endpoint or endpoint,
            args.pub or pub,
            args.templates,
            site,
            service=args.service,
            concurrency=args.concurrency,
            dev=args.dev,
            bytecode_dir=args.bytecode_dir,
            redis=env.redis_client(url),
            label=label,
            failover_s=env.failover_s(),
        )
    except (ImportError, TypeError, ValueError, OSError) as exc:
        print(f"zeromesh node render: {exc}", file=sys.stderr)
        return 2
    log.info(
        "render node %s: service %r, templates %s, site module %s, concurrency %d%s, features from %s",
        label,
        args.service,
        node.templates.root,
        args.site_module or "(none)",
        args.concurrency,
        ", dev (templates reload)" if args.dev else "",
        env.redacted(url) if url else "nowhere (no Redis)",
    )
    from zeromesh.errors import ZeromeshError

    try:
        node.run(grace=args.grace)
    except ZeromeshError as exc:  # the broker refused the node's key, or its READY (logged already)
        print(f"zeromesh node render: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_edge(args: argparse.Namespace) -> int:
    """The HTTP edge. One process: patch gevent first, then serve. --workers N: a supervisor of N of those."""
    from zeromesh.nodes.edge import defaults as edge_defaults

    listen = args.listen or env.http_listen() or edge_defaults.LISTEN
    routes = os.path.abspath(args.routes) if args.routes else None
    if args.workers > 1:
        from zeromesh.nodes.edge.main import EdgeOptions, read_routes
        from zeromesh.nodes.edge.routes import RouteError
        from zeromesh.nodes.edge.supervisor import supervise

        try:
            read_routes(EdgeOptions(routes=routes))  # report a bad table once, not once per process
        except RouteError as exc:
            print(f"zeromesh edge: {exc}", file=sys.stderr)
            return 2
        child = [
            sys.executable,
            "-m",
            "zeromesh",
            "--log-level",
            args.log_level,
            "edge",
            "--workers",
            "1",
            "--reuse-port",
            "--listen",
            listen,
        ]
        for flag, value in (
            ("--routes", routes),
            ("--endpoint", args.endpoint),
            ("--pub", args.pub),
            ("--data-dir", args.data_dir),
        ):
            child += [flag, value] if value else []
        return supervise(child + (["--access-log"] if args.access_log else []), args.workers)
    patch_gevent()  # before the edge opens any socket
    from zeromesh.nodes.edge.main import EdgeOptions, serve

    endpoint, pub = env.endpoints()
    return serve(
        EdgeOptions(
            listen=listen,
            routes=routes,
            broker=args.endpoint or endpoint,
            pub=args.pub or pub,
            redis_url=env.redis_url(args.data_dir),
            reuse_port=args.reuse_port,
            access_log=args.access_log,
            failover_s=env.failover_s(),
        )
    )


def add_node_verb(verbs: Any) -> None:
    """Register node (render)."""
    p = verbs.add_parser("node", help="run a node (render)", description="Run a node of the mesh.")
    kinds = p.add_subparsers(dest="node_kind", metavar="KIND")
    kinds.required = True
    r = kinds.add_parser(
        "render",
        help="a rendering node: Jinja2 pages for a service (default render)",
        description="Serve SERVICE with sandboxed Jinja2 templates from TEMPLATES/<site>/ (falling back to "
        "TEMPLATES/default/), page functions from the site module, handlers as gevent greenlets. "
        "Feature switches come from Redis (ZEROMESH_REDIS_URL; unset: unix://var/redis/redis.sock "
        "under the working directory, the embedded server's socket; none: no Redis). " + client_verb.CURVE_HELP,
    )
    r.add_argument("--templates", required=True, metavar="DIR", help="folder holding one folder per site")
    r.add_argument(
        "--site-module",
        metavar="MODULE",
        help="page functions: package.module[:attr] or path/file.py[:attr] (attr default: site)",
    )
    r.add_argument("--service", default="render", help="service name (default %(default)s)")
    r.add_argument("--concurrency", type=int, default=100, help="requests rendered at once (default %(default)s)")
    r.add_argument("--dev", action="store_true", help="reload templates when their files change")
    r.add_argument("--bytecode-dir", help="compiled template cache (default: a per-user temporary folder)")
    r.add_argument("--label", help="worker label shown by status (default SERVICE@host:pid)")
    r.add_argument("--grace", type=float, default=10.0, help="seconds to finish renders on SIGTERM")
    r.add_argument("--endpoint", help="broker endpoint (overrides ZEROMESH_BROKER)")
    r.add_argument("--pub", help="PUB endpoint (overrides ZEROMESH_PUB)")
    r.set_defaults(func=cmd_node_render)


def add_edge_verb(verbs: Any) -> None:
    """Register edge."""
    p = verbs.add_parser(
        "edge",
        help="run the HTTP edge",
        description="Serve HTTP (gevent) on ZEROMESH_HTTP (default 127.0.0.1:8080): routes map "
        "requests to services and queues, with a page cache kept fresh by "
        "invalidations; /healthz, /metrics and /events are the edge's own. "
        "Redis (invalidation replay, feature switches): ZEROMESH_REDIS_URL, unset: "
        "the embedded server's socket under ZEROMESH_DATA_DIR (default var/redis), "
        "none: without. " + client_verb.CURVE_HELP,
    )
    p.add_argument("--routes", metavar="FILE", help="route table (TOML; default routes.toml if present)")
    p.add_argument("--listen", metavar="HOST:PORT", help="override ZEROMESH_HTTP")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port (default %(default)s)")
    p.add_argument("--access-log", action="store_true", help="log every request (costs throughput)")
    p.add_argument("--endpoint", help="broker endpoint (overrides ZEROMESH_BROKER)")
    p.add_argument("--pub", help="PUB endpoint (overrides ZEROMESH_PUB)")
    p.add_argument("--data-dir", help=argparse.SUPPRESS)
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set by the supervisor
    p.set_defaults(func=cmd_edge)
