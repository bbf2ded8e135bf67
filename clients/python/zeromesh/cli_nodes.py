# SPDX-License-Identifier: MIT
"""`zeromesh edge`, `zeromesh node render`, `zeromesh feature on|off NAME`, `zeromesh invalidate ...`.

Part of the command line (cli.py registers these verbs): the only other
place that reads the environment.

Redis (feature switches): ZEROMESH_REDIS_URL; unset means the embedded
server's socket `unix://$ZEROMESH_DATA_DIR/redis.sock` (ZEROMESH_DATA_DIR
defaults to var/redis, relative to the working directory), as `zeromesh
redis` and the broker use it; `none` means no Redis.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any

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


def redis_url() -> str:
    """The Redis URL for features ("" = none); see the module docstring."""
    url = os.environ.get("ZEROMESH_REDIS_URL", "")
    if url.lower() == "none":
        return ""
    if url:
        return url
    data_dir = os.environ.get("ZEROMESH_DATA_DIR") or os.path.join("var", "redis")
    return "unix://" + os.path.abspath(os.path.join(data_dir, "redis.sock"))


def redis_client(url: str) -> Any:
    """A redis-py client (connects lazily), or None without a URL."""
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=1.0)


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


# -- zeromesh node render ----------------------------------------------------

def cmd_node_render(args: argparse.Namespace) -> int:
    from zeromesh.green_pool import require_patched
    from zeromesh.nodes.pages import load_site
    from zeromesh.nodes.render import RenderNode

    from .cli import env_endpoints

    require_patched()  # main() patched before importing anything else for this verb
    endpoint, pub = env_endpoints()
    url = redis_url()
    label = args.label or f"{args.service}@{socket.gethostname()}:{os.getpid()}"
    try:
        site = load_site(args.site_module)
        node = RenderNode.build(args.endpoint or endpoint, args.pub or pub, args.templates, site,
                                service=args.service, concurrency=args.concurrency, dev=args.dev,
                                bytecode_dir=args.bytecode_dir, redis=redis_client(url), label=label)
    except (ImportError, TypeError, ValueError, OSError) as exc:
        print(f"zeromesh node render: {exc}", file=sys.stderr)
        return 2
    log.info("render node %s: service %r, templates %s, site module %s, concurrency %d%s, features from %s",
             label, args.service, node.templates.root, args.site_module or "(none)", args.concurrency,
             ", dev (templates reload)" if args.dev else "", _redacted(url) if url else "nowhere (no Redis)")
    node.run(grace=args.grace)
    return 0


# -- zeromesh feature on|off NAME ---------------------------------------------

PARTLY_DONE = 4
"""Exit status of a verb that did part of its work; its output says which part."""


def cmd_feature(args: argparse.Namespace) -> int:
    from zeromesh.nodes import names
    from zeromesh.nodes.control import FEATURE_RELOAD_S
    from zeromesh.nodes.edge.defaults import CATCHUP_S
    from zeromesh.nodes.features import event_body

    from .cli import _client, confirm_sent

    on = args.state == "on"
    switch = f"feature {args.name} {args.state}"
    url = redis_url()
    not_kept = "Redis is off: ZEROMESH_REDIS_URL=none" if not url else None
    if url:
        try:
            redis_client(url).hset(names.FEATURES_KEY, args.name, args.state)
        except Exception as exc:  # redis errors, OSError
            not_kept = f"{_redacted(url)}: {exc}"
    with _client(args) as client:
        client.publish(names.FEATURE_TOPIC, event_body(args.name, on))
        # Cached pages that used the feature carry this tag: they follow the switch.
        client.publish(names.INVALIDATE_TAG, names.FEATURE_TAG_PREFIX + args.name)
        not_announced = confirm_sent(client)
    if not_kept is None and not_announced is None:
        print(f"{switch}: written to Redis and announced")
        return 0
    if not_kept is not None and not_announced is not None:
        print(f"zeromesh: {switch} NOT switched: not written to Redis ({not_kept}); not announced: {not_announced}",
              file=sys.stderr)
        return 1
    if not_announced is not None:
        print(f"{switch}: written to Redis, not announced")
        print(f"zeromesh: not announced: {not_announced}. Render nodes read the switch from Redis within "
              f"{FEATURE_RELOAD_S:g} s, edges within {CATCHUP_S:g} s; cached pages tagged "
              f"{names.FEATURE_TAG_PREFIX}{args.name} were not invalidated and live until their TTL",
              file=sys.stderr)
    else:
        print(f"{switch}: announced, not written to Redis")
        print(f"zeromesh: not written to Redis ({not_kept}): running nodes and edges follow the switch, "
              "but processes started later (or that missed the event) will not know it", file=sys.stderr)
    return PARTLY_DONE


# -- zeromesh invalidate --------------------------------------------------------

def cmd_invalidate(args: argparse.Namespace) -> int:
    from zeromesh.nodes import names

    from .cli import _client, _fail, confirm_sent

    events: list[tuple[str, str]] = [(names.INVALIDATE_PATH, p) for p in args.path or []]
    events += [(names.INVALIDATE_TAG, t) for t in args.tag or []]
    if args.all:
        events.append((names.INVALIDATE_ALL, ""))
    if not events:
        print("zeromesh invalidate: give --path P, --tag T or --all", file=sys.stderr)
        return 2
    with _client(args) as client:
        sent = [(topic, body, client.publish(topic, body)) for topic, body in events]
        failed = confirm_sent(client)
    if failed is not None:
        return _fail(failed, f"{len(sent)} invalidation(s) not published")
    for topic, body, event_id in sent:
        print(f"{topic} {body}".rstrip(), event_id)
    return 0


# -- zeromesh edge ---------------------------------------------------------------

def cmd_edge(args: argparse.Namespace) -> int:
    """The HTTP edge. One process: patch gevent first, then serve. --workers N: a supervisor of N of those."""
    from zeromesh.nodes.edge import defaults as edge_defaults

    from .cli import _data_dir, env_endpoints

    listen = args.listen or os.environ.get("ZEROMESH_HTTP") or edge_defaults.LISTEN
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
        child = [sys.executable, "-m", "zeromesh", "--log-level", args.log_level, "edge", "--workers", "1",
                 "--reuse-port", "--listen", listen]
        for flag, value in (("--routes", routes), ("--endpoint", args.endpoint), ("--pub", args.pub),
                            ("--data-dir", args.data_dir)):
            child += [flag, value] if value else []
        return supervise(child + (["--access-log"] if args.access_log else []), args.workers)
    from gevent import monkey

    monkey.patch_all()  # before the edge opens any socket
    from zeromesh.nodes.edge.main import EdgeOptions, serve

    redis_url = os.environ.get("ZEROMESH_REDIS_URL", "")
    if redis_url.lower() == "none":
        redis_url = ""
    elif not redis_url:
        redis_url = "unix://" + os.path.abspath(os.path.join(_data_dir(args), "redis.sock"))
    endpoint, pub = env_endpoints()
    return serve(EdgeOptions(listen=listen, routes=routes, broker=args.endpoint or endpoint, pub=args.pub or pub,
                             redis_url=redis_url, reuse_port=args.reuse_port, access_log=args.access_log))


def add_edge_verb(verbs: Any) -> None:
    p = verbs.add_parser("edge", help="run the HTTP edge",
                         description="Serve HTTP (gevent) on ZEROMESH_HTTP (default 127.0.0.1:8080): routes map "
                                     "requests to services and queues, with a page cache kept fresh by "
                                     "invalidations; /healthz, /metrics and /events are the edge's own. "
                                     "Redis (invalidation replay, feature switches): ZEROMESH_REDIS_URL, unset: "
                                     "the embedded server's socket under ZEROMESH_DATA_DIR (default var/redis), "
                                     "none: without.")
    p.add_argument("--routes", metavar="FILE", help="route table (TOML; default routes.toml if present)")
    p.add_argument("--listen", metavar="HOST:PORT", help="override ZEROMESH_HTTP")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port (default %(default)s)")
    p.add_argument("--access-log", action="store_true", help="log every request (costs throughput)")
    p.add_argument("--endpoint", help="broker endpoint (overrides ZEROMESH_BROKER)")
    p.add_argument("--pub", help="PUB endpoint (overrides ZEROMESH_PUB)")
    p.add_argument("--data-dir", help=argparse.SUPPRESS)
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set by the supervisor
    p.set_defaults(func=cmd_edge)


def add_verbs(verbs: Any, client_verb: Any) -> None:
    """Register node, feature and invalidate; client_verb is cli.py's verb() helper."""
    p = verbs.add_parser("node", help="run a node (render)", description="Run a node of the mesh.")
    kinds = p.add_subparsers(dest="node_kind", metavar="KIND")
    kinds.required = True
    r = kinds.add_parser(
        "render", help="a rendering node: Jinja2 pages for a service (default render)",
        description="Serve SERVICE with sandboxed Jinja2 templates from TEMPLATES/<site>/ (falling back to "
                    "TEMPLATES/default/), page functions from the site module, handlers as gevent greenlets. "
                    "Feature switches come from Redis (ZEROMESH_REDIS_URL; unset: unix://var/redis/redis.sock "
                    "under the working directory, the embedded server's socket; none: no Redis).")
    r.add_argument("--templates", required=True, metavar="DIR", help="folder holding one folder per site")
    r.add_argument("--site-module", metavar="MODULE",
                   help="page functions: package.module[:attr] or path/file.py[:attr] (attr default: site)")
    r.add_argument("--service", default="render", help="service name (default %(default)s)")
    r.add_argument("--concurrency", type=int, default=100, help="requests rendered at once (default %(default)s)")
    r.add_argument("--dev", action="store_true", help="reload templates when their files change")
    r.add_argument("--bytecode-dir", help="compiled template cache (default: a per-user temporary folder)")
    r.add_argument("--label", help="worker label shown by status (default SERVICE@host:pid)")
    r.add_argument("--grace", type=float, default=10.0, help="seconds to finish renders on SIGTERM")
    r.add_argument("--endpoint", help="broker endpoint (overrides ZEROMESH_BROKER)")
    r.add_argument("--pub", help="PUB endpoint (overrides ZEROMESH_PUB)")
    r.set_defaults(func=cmd_node_render)

    p = client_verb("feature", cmd_feature, "switch a feature on or off",
                    "Write the switch to the Redis hash zeromesh:features (name -> on/off) and announce it on "
                    "zeromesh.feature, so running nodes and edges honour it at once; the announcement also "
                    "invalidates the tag feature:NAME (cached pages that depend on it). Exit 0: both done. "
                    f"Exit {PARTLY_DONE}: one of the two done, and the output says which: written to Redis but "
                    "not announced (the broker is unreachable: nodes and edges read the hash at their next "
                    "reload, within 30 s, and cached pages are not invalidated), or announced but not written "
                    "to Redis (processes started later will not know it). Exit 1: neither.")
    p.add_argument("state", choices=["on", "off"])
    p.add_argument("name", metavar="NAME")

    p = client_verb("invalidate", cmd_invalidate, "drop cached pages by path prefix, tag, or all",
                    "Publish on zeromesh.invalidate.path (body: the path prefix), zeromesh.invalidate.tag "
                    "(body: the tag) or zeromesh.invalidate.all; the broker records each in the Redis stream "
                    "zeromesh:invalidations. Once the broker has taken them all, prints each topic, body and "
                    "event id; when it cannot be reached, prints no id and publishes nothing (exit 1, or 2 if "
                    "the broker was there but did not answer in time).")
    p.add_argument("--path", action="append", metavar="PREFIX", help="a path prefix, e.g. /cards (repeatable)")
    p.add_argument("--tag", action="append", metavar="TAG", help="a tag, e.g. card:42 (repeatable)")
    p.add_argument("--all", action="store_true", help="everything")
