# SPDX-License-Identifier: MIT
"""`zeromesh publish`, `zeromesh subscribe`, and what travels on pub/sub for the nodes:
`zeromesh feature on|off NAME` and `zeromesh invalidate ...`."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from . import client_verb, env

PARTLY_DONE = 4
"""Exit status of a verb that did part of its work; its output says which part."""


def cmd_publish(args: argparse.Namespace) -> int:
    with client_verb.connect(args) as client:
        event_id = client.publish(args.topic, client_verb.body(args.body), client_verb.headers(args.header))
        failed = client_verb.confirm_sent(client)
    if failed is not None:
        return client_verb.fail(failed, "not published")
    print(event_id)
    return 0


def cmd_subscribe(args: argparse.Namespace) -> int:
    from zeromesh import display

    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    seen = 0
    with client_verb.connect(args) as client, client.subscribe(*args.prefixes) as sub:
        while args.count is None or seen < args.count:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            event = sub.next(remaining)
            if event is None:
                break
            seen += 1
            print(display.event_json(event) if args.json else display.event_line(event), flush=True)
    if args.count is not None and seen < args.count:
        print(f"zeromesh: timed out after {seen} of {args.count} event(s)", file=sys.stderr)
        return 2
    return 0


def cmd_feature(args: argparse.Namespace) -> int:
    from zeromesh.nodes import names
    from zeromesh.nodes.control import FEATURE_RELOAD_S
    from zeromesh.nodes.edge.defaults import CATCHUP_S
    from zeromesh.nodes.feature_switch import flip

    switch = f"feature {args.name} {args.state}"
    url = env.redis_url()
    with client_verb.connect(args) as client:
        flipped = flip(client, env.redis_client(url), args.name, args.state == "on", env.redacted(url) if url else "")
    not_kept, not_announced = flipped.not_kept, flipped.not_announced
    if not_kept is None and not_announced is None:
        print(f"{switch}: written to Redis and announced")
        return 0
    if not_kept is not None and not_announced is not None:
        print(
            f"zeromesh: {switch} NOT switched: not written to Redis ({not_kept}); not announced: {not_announced}",
            file=sys.stderr,
        )
        return 1
    if not_announced is not None:
        print(f"{switch}: written to Redis, not announced")
        print(
            f"zeromesh: not announced: {not_announced}. Render nodes read the switch from Redis within "
            f"{FEATURE_RELOAD_S:g} s, edges within {CATCHUP_S:g} s; cached pages tagged "
            f"{names.FEATURE_TAG_PREFIX}{args.name} were not invalidated and live until their TTL",
            file=sys.stderr,
        )
    else:
        print(f"{switch}: announced, not written to Redis")
        print(
            f"zeromesh: not written to Redis ({not_kept}): running nodes and edges follow the switch, "
            "but processes started later (or that missed the event) will not know it",
            file=sys.stderr,
        )
    return PARTLY_DONE


def cmd_invalidate(args: argparse.Namespace) -> int:
    from zeromesh.nodes import names

    events: list[tuple[str, str]] = [(names.INVALIDATE_PATH, p) for p in args.path or []]
    events += [(names.INVALIDATE_TAG, t) for t in args.tag or []]
    if args.all:
        events.append((names.INVALIDATE_ALL, ""))
    if not events:
        print("zeromesh invalidate: give --path P, --tag T or --all", file=sys.stderr)
        return 2
    with client_verb.connect(args) as client:
        sent = [(topic, body, client.publish(topic, body)) for topic, body in events]
        failed = client_verb.confirm_sent(client)
    if failed is not None:
        return client_verb.fail(failed, f"{len(sent)} invalidation(s) not published")
    for topic, body, event_id in sent:
        print(f"{topic} {body}".rstrip(), event_id)
    return 0


def add_publish_verbs(verbs: Any) -> None:
    """Register publish and subscribe."""
    p = client_verb.add(
        verbs,
        "publish",
        cmd_publish,
        "publish an event",
        "Publish BODY on TOPIC and print the event's id once the broker has taken the event (a ping "
        "answered after it); subscribers see that id in the event. Delivery to subscribers is at most "
        "once. When the broker cannot be reached nothing is printed on standard output, nothing is "
        "published, and the exit status is 1 (2 if it was there but did not answer in time).",
    )
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("body", metavar="BODY", nargs="?", help="event body; standard input if omitted or '-'")
    client_verb.add_header_flag(p)

    p = client_verb.add(
        verbs,
        "subscribe",
        cmd_subscribe,
        "print published events",
        "Print events whose topic starts with one of the PREFIXes, one per line: 'topic seq body', "
        "or JSON with topic, seq, epoch, gap, id, body and encoding "
        "(utf-8, or base64 when the body is not UTF-8).",
        json_flag=True,
    )
    p.add_argument("prefixes", metavar="PREFIX", nargs="*", help="topic prefixes (none: every topic)")
    p.add_argument("--pub", help="PUB endpoint (overrides ZEROMESH_PUB)")
    p.add_argument("--count", type=int, help="exit after this many events")
    p.add_argument("--timeout", type=float, help="exit after this many seconds (exit 2 if --count was not reached)")


def add_node_control_verbs(verbs: Any) -> None:
    """Register feature and invalidate."""
    p = client_verb.add(
        verbs,
        "feature",
        cmd_feature,
        "switch a feature on or off",
        "Write the switch to the Redis hash zeromesh:features (name -> on/off) and announce it on "
        "zeromesh.feature, so running nodes and edges honour it at once; the announcement also "
        "invalidates the tag feature:NAME (cached pages that depend on it). Exit 0: both done. "
        f"Exit {PARTLY_DONE}: one of the two done, and the output says which: written to Redis but "
        "not announced (the broker is unreachable: nodes and edges read the hash at their next "
        "reload, within 30 s, and cached pages are not invalidated), or announced but not written "
        "to Redis (processes started later will not know it). Exit 1: neither.",
    )
    p.add_argument("state", choices=["on", "off"])
    p.add_argument("name", metavar="NAME")

    p = client_verb.add(
        verbs,
        "invalidate",
        cmd_invalidate,
        "drop cached pages by path prefix, tag, or all",
        "Publish on zeromesh.invalidate.path (body: the path prefix), zeromesh.invalidate.tag "
        "(body: the tag) or zeromesh.invalidate.all; the broker records each in the Redis stream "
        "zeromesh:invalidations. Once the broker has taken them all, prints each topic, body and "
        "event id; when it cannot be reached, prints no id and publishes nothing (exit 1, or 2 if "
        "the broker was there but did not answer in time).",
    )
    p.add_argument("--path", action="append", metavar="PREFIX", help="a path prefix, e.g. /cards (repeatable)")
    p.add_argument("--tag", action="append", metavar="TAG", help="a tag, e.g. card:42 (repeatable)")
    p.add_argument("--all", action="store_true", help="everything")
