# SPDX-License-Identifier: MIT
"""The demo's back-end workers: `python -m zeromesh.nodes.demo.workers`.

    cards   service  {"op": "list"} -> [card summary...]; {"op": "get", "id": "3"} -> card or null;
                     {"op": "sent", "id": "3"} -> counts one more send, then the card (or null): how
                     a send worker in another process (clients/ruby/examples/send_worker.rb) records it
    reco    service  {"id": "3"} -> three related cards (also as GET /api/reco/{id} through the edge)
    ads     service  {"id": "3", "site": "default"} -> an ad; deliberately slowish (--ads-delay, 0.25 s)
    send    queue    a form post or JSON {card_id, to, from, message}: records the card as sent
                     (in memory, and on the Redis list zeromesh:demo:sent when Redis is up), publishes
                     cards.sent (JSON), and invalidates the tag card:<id> and the path "/"; with
                     --sent-log QUEUE, also pushes a one-line summary there (a raw queue in
                     nodes/demo/broker.toml, read by clients/bash/examples/sent_log.sh)

--skip ads,send leaves those names to workers in other languages (`make run` does
so when it starts the Ruby send worker and the Java ads service).

All JSON. Handlers run as greenlets (Worker(pool="gevent")), so the slow ads
service does not hold up the others. Redis as for every zeromesh process:
ZEROMESH_REDIS_URL, unset -> unix://var/redis/redis.sock under the working directory.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

from zeromesh import Client, DeadLetter, Job, Reply, Worker  # noqa: E402
from zeromesh.nodes import names  # noqa: E402

from .catalog import BadSend, Catalog, parse_send, sent_event, sent_summary  # noqa: E402

log = logging.getLogger("zeromesh.demo")

SENT_KEY = "zeromesh:demo:sent"
"""Redis list of sent cards (JSON), newest last, capped at SENT_KEEP."""

SENT_KEEP = 1000

SENT_TOPIC = "cards.sent"

SERVICES = ("cards", "reco", "ads", "send")
"""Every name the demo workers serve (send is a queue, the others services)."""

ADS = [
    {
        "headline": "Three for two",
        "text": "Send any three cards this week and the fourth one is on us.",
        "card_id": "3",
    },
    {"headline": "Never miss a birthday", "text": "Pick a card today, schedule it for the big day.", "card_id": "1"},
    {"headline": "Say thanks today", "text": "The card people keep on the fridge.", "card_id": "2"},
]


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _json_body(job: Job) -> dict[str, Any]:
    if not job.body:
        return {}
    data = json.loads(job.body)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


class DemoServices:
    """The handlers, with what they share passed in."""

    def __init__(
        self,
        catalog: Catalog,
        client: Client,
        redis: Any = None,
        ads_delay: float = 0.25,
        ads_late_every: int = 0,
        ads_late_delay: float = 3.0,
        sent_log: str = "",
    ) -> None:
        self.catalog = catalog
        self.client = client
        self.redis = redis
        self.ads_delay = ads_delay
        self.ads_late_every = ads_late_every
        self.ads_late_delay = ads_late_delay
        self.sent_log = sent_log
        self.sent: list[dict[str, Any]] = []
        self._ads_served = itertools.count(1)

    def register(self, worker: Worker, skip: frozenset[str] = frozenset()) -> list[str]:
        """Serve every name of SERVICES but those in skip; returns the names served."""
        served = [name for name in SERVICES if name not in skip]
        for name in served:
            worker.handler(name)(getattr(self, name))
        return served

    def cards(self, job: Job) -> bytes:
        req = _json_body(job)
        op = req.get("op", "list")
        if op == "list":
            return dumps(self.catalog.list())
        if op == "get":
            return dumps(self.catalog.get(str(req.get("id", ""))))
        if op == "sent":  # a send worker elsewhere records a sent card here, where the counts live
            card_id = str(req.get("id", ""))
            if self.catalog.get(card_id) is None:
                return dumps(None)
            self.catalog.record_sent(card_id)
            return dumps(self.catalog.get(card_id))
        raise ValueError(f"unknown op {op!r} (list, get or sent)")

    def reco(self, job: Job) -> bytes | Reply:
        if names.H_PATH in job.headers:  # straight from the edge (GET /api/reco/{id}): id in the path
            card_id = str((job.headers.get(names.H_PARAMS) or {}).get("id", ""))
            return Reply(dumps(self.catalog.related(card_id)), {names.H_HEADERS: {"Content-Type": "application/json"}})
        return dumps(self.catalog.related(str(_json_body(job).get("id", ""))))

    def ads(self, job: Job) -> bytes:
        n = next(self._ads_served)
        late = self.ads_late_every and n % self.ads_late_every == 0
        delay = self.ads_late_delay if late else self.ads_delay
        if delay > 0:  # the slowish one, on purpose; without a delay it answers in the same turn as the others
            gevent.sleep(delay)
        ad = dict(ADS[n % len(ADS)])
        card = self.catalog.get(ad["card_id"])
        ad.update(title=card["title"] if card else "", symbol=card["symbol"] if card else "")
        return dumps(ad)

    def send(self, job: Job) -> None:
        http_headers = job.headers.get(names.H_HEADERS) or {}
        try:
            sent = parse_send(job.body, str(http_headers.get("content-type", "")))
        except BadSend as exc:
            raise DeadLetter(str(exc)) from None
        card = self.catalog.get(sent["card_id"])
        if card is None:
            raise DeadLetter(f"no card {sent['card_id']!r}")
        # At-least-once: a redelivered job (attempt > 1) may have been counted already.
        # The demo accepts the double count rather than keeping a table of job ids.
        card["sent"] = self.catalog.record_sent(sent["card_id"])
        event = sent_event(sent, card, job.id)
        self.sent.append(event)
        del self.sent[:-SENT_KEEP]
        if self.redis is not None:
            try:
                self.redis.pipeline().rpush(SENT_KEY, dumps(event)).ltrim(SENT_KEY, -SENT_KEEP, -1).execute()
            except Exception as exc:  # Redis is optional for the demo
                log.warning("could not record the sent card in Redis: %s", exc)
        self.client.publish(SENT_TOPIC, dumps(event))
        self.client.publish(names.INVALIDATE_TAG, f"card:{sent['card_id']}")
        self.client.publish(names.INVALIDATE_PATH, "/")
        if self.sent_log:
            try:
                self.client.push(self.sent_log, sent_summary(event), timeout=2.0)
            except Exception as exc:  # the card is sent; only its log line is lost
                log.warning("could not push to the queue %s: %s", self.sent_log, exc)
        log.info("card %s sent from %s to %s (job %s)", sent["card_id"], sent["from"], sent["to"], job.id)


def main(argv: list[str] | None = None) -> int:
    from zeromesh.cli.env import failover_s, redis_client, redis_url
    from zeromesh.cli.logs import setup_logging

    parser = argparse.ArgumentParser(
        prog="python -m zeromesh.nodes.demo.workers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--endpoint", help="broker endpoint (overrides ZEROMESH_BROKER)")
    parser.add_argument("--pub", help="PUB endpoint (overrides ZEROMESH_PUB)")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--ads-delay", type=float, default=0.25, help="seconds each ad takes (default 0.25)")
    parser.add_argument(
        "--ads-late-every", type=int, default=0, help="every Nth ad takes --ads-late-delay instead (default 0: never)"
    )
    parser.add_argument("--ads-late-delay", type=float, default=3.0)
    parser.add_argument("--label", default="demo-workers")
    parser.add_argument(
        "--skip",
        default="",
        metavar="NAMES",
        help=f"comma-separated names not to serve (of {', '.join(SERVICES)}): left to workers in other languages",
    )
    parser.add_argument(
        "--sent-log", default="", metavar="QUEUE", help="push a one-line summary of each sent card to this (raw) queue"
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (env ZEROMESH_LOG_LEVEL, default INFO)")
    args = parser.parse_args(argv)
    skip = frozenset(name.strip() for name in args.skip.split(",") if name.strip())
    if skip - set(SERVICES):
        parser.error(
            f"--skip: unknown name(s) {', '.join(sorted(skip - set(SERVICES)))} (the demo serves {', '.join(SERVICES)})"
        )
    if skip >= set(SERVICES):
        parser.error("--skip names every service: nothing left to serve")
    setup_logging(args.log_level)

    worker = Worker(args.endpoint, concurrency=args.concurrency, label=args.label, pool="gevent")
    client = Client(args.endpoint, args.pub, green=True, failover_s=failover_s())
    services = DemoServices(
        Catalog(),
        client,
        redis_client(redis_url()),
        args.ads_delay,
        args.ads_late_every,
        args.ads_late_delay,
        args.sent_log,
    )
    served = services.register(worker, skip)
    log.info(
        "demo workers: %s on %s%s",
        ", ".join(served),
        worker.endpoint,
        f" (left to others: {', '.join(sorted(skip))})" if skip else "",
    )
    try:
        worker.run()  # until SIGTERM/SIGINT
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
