# SPDX-License-Identifier: MIT
"""Edges on a mesh of several brokers (each its own --name on the test's Redis): HTTP keeps being
answered through a rolling restart of every broker; an invalidation published through one broker
reaches edges whatever broker they call, and one lost on its way from a broker that then died is
replayed from the Redis stream. Each test prints its counts."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from zeromesh import Client, Reply

from ..conftest import scaled, wait_until
from .edge_helpers import TCPProxy, fetch, wait_metric_above

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

FAILOVER_S = 1.0
ROUTE_TIMEOUT_S = 3.0
HTTP_TIMEOUT_S = 8.0  # the browser's own limit: well past the route's, so the edge always answers first
WINDOW_SLACK_S = 1.0  # noticing the lost connection, and the first answer through the next broker
INVALIDATIONS = "zeromesh_edge_invalidations_total"
STREAM = "zeromesh:invalidations"
DOWN_S = 2 * FAILOVER_S  # each broker stays down this long: the edge on it must move, not wait for it

ROUTES = f"""
[[route]]
name = "hello"
path = "/hello/{{n}}"
service = "hello"
timeout_s = {ROUTE_TIMEOUT_S}

[[route]]
name = "cards"
path = "/cards/{{id}}"
service = "page"
cache_ttl_s = 300
"""


def named_brokers(broker_factory, names):
    return [broker_factory(args=["--name", name]) for name in names]


def lists(bs) -> dict[str, str]:
    """The environment of an edge on every broker of `bs`, failing over after FAILOVER_S."""
    return {
        "ZEROMESH_BROKER": ",".join(b.endpoint for b in bs),
        "ZEROMESH_PUB": ",".join(b.pub_endpoint for b in bs),
        "ZEROMESH_FAILOVER_S": str(FAILOVER_S),
    }


def registered_on(b, label: str) -> bool:
    with Client(b.endpoint, b.pub_endpoint, green=False) as c:
        return any(w["label"] == label for w in c.status()["workers"])


class Load:
    """Back-to-back GETs on one route from a thread: (started, took, status) each; status 0 is no answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.results: list[tuple[float, float, int]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="http-load", daemon=True)

    def run(self) -> None:
        for n in itertools.count():
            if self.stopping.is_set():
                return
            started = time.monotonic()
            try:
                status = fetch(self.port, f"/hello/{n}", timeout=HTTP_TIMEOUT_S).status
            except OSError:
                status = 0
            self.results.append((started, time.monotonic() - started, status))

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(scaled(HTTP_TIMEOUT_S + 2))


def test_a_rolling_restart_of_every_broker_under_http_load(broker_factory, start_worker, edge_factory):
    names = ["b1", "b2", "b3"]
    bs = named_brokers(broker_factory, names)
    start_worker(",".join(b.endpoint for b in bs), {"hello": lambda job: b"hello"}, concurrency=4, label="hello")
    for b in bs:
        wait_until(lambda b=b: registered_on(b, "hello"), 10, 0.1, f"the worker on {b.endpoint}")
    edge = edge_factory(ROUTES, on=bs[0], env=lists(bs))
    assert edge.get("/hello/first").status == 200

    restarts: list[float] = []  # when each SIGTERM was sent
    with Load(edge.port) as load:
        wait_until(lambda: len(load.results) >= 20, 10, 0.05, "load under way")
        for i, name in enumerate(names):
            old = bs[i]
            restarts.append(time.monotonic())
            assert old.stop() == 0, old.log()
            time.sleep(DOWN_S)
            bs[i] = broker_factory(
                args=["--name", name], ports=(old.port, old.pub_port), log_name=f"{name}-restarted.log"
            )
            wait_until(lambda b=bs[i]: registered_on(b, "hello"), 15, 0.1, f"the worker back on {name}")
        done_at = len(load.results)
        wait_until(lambda: len(load.results) >= done_at + 20, 10, 0.05, "load after the last restart")

    results = list(load.results)
    failed = [(s, took, status) for s, took, status in results if not 200 <= status < 300]
    # Each restart can fail at most the one request in flight when the broker went (the load is
    # sequential) plus those started while the edge had not yet moved on: within failover_s (and
    # the slack to notice the loss) of the SIGTERM. Only restarts of the edge's current broker fail any.
    # The one in flight started at most a route timeout before the SIGTERM: a failure outside
    # [SIGTERM - route timeout, SIGTERM + failover_s + slack] of every restart has no excuse.
    started_in_failover = sum(1 for s, _, _ in results for t in restarts if t_in(s, t, t + FAILOVER_S + WINDOW_SLACK_S))
    bound = len(restarts) + started_in_failover
    windows = [(t - ROUTE_TIMEOUT_S, t + FAILOVER_S + WINDOW_SLACK_S) for t in restarts]
    unexplained = [f for f in failed if not any(t_in(f[0], lo, hi) for lo, hi in windows)]
    slowest = max(took for _, took, _ in results)
    moves = [line.split("WARNING", 1)[1] for line in edge.log().splitlines() if "unreachable for" in line]
    print(
        f"\n{len(results)} GETs through {len(restarts)} broker restarts: {len(failed)} not 2xx "
        f"({sorted({status for _, _, status in failed})}), bound {bound} "
        f"({len(restarts)} in flight + {started_in_failover} started within failover_s), "
        f"slowest {slowest:.2f}s (timeout {HTTP_TIMEOUT_S}s); the edge moved {len(moves)} time(s): {moves}"
    )
    for s, took, status in failed:
        since = min((s - t for t in restarts), key=abs)
        print(f"  {status} started {since:+.2f}s from the nearest SIGTERM, answered after {took:.2f}s")
    assert moves, "the edge's broker was down for longer than failover_s, yet the edge never moved"
    assert len(failed) <= bound, failed[:5]
    assert not unexplained, unexplained[:5]
    assert all(status != 0 for _, _, status in results), "a request got no answer within its timeout"
    assert slowest < ROUTE_TIMEOUT_S + WINDOW_SLACK_S


def t_in(t: float, lo: float, hi: float) -> bool:
    return lo <= t <= hi


@pytest.fixture
def cards(broker_factory, start_worker):
    """Brokers a and b, and a worker on both serving cacheable pages."""
    bs = named_brokers(broker_factory, ["a", "b"])
    counter = itertools.count(1)
    start_worker(
        ",".join(b.endpoint for b in bs),
        {"page": lambda job: Reply(f"card {job.headers['http.params']['id']} {next(counter)}".encode(), {})},
        label="pages",
    )
    for b in bs:
        wait_until(lambda b=b: registered_on(b, "pages"), 10, 0.1, f"the worker on {b.endpoint}")
    publishers = [Client(b.endpoint, b.pub_endpoint, green=False) for b in bs]
    yield bs, publishers
    for p in publishers:
        p.close()


def cached(edge, *paths):
    for path in paths:
        edge.get(path)
        assert edge.get(path).cache == "HIT", path


def heard_through(publisher: Client, edges, timeout: float = 10.0) -> None:
    """Republish a harmless path invalidation through `publisher` until every edge has applied one."""
    base = [e.metric(INVALIDATIONS, kind="path") for e in edges]
    deadline = time.monotonic() + scaled(timeout)
    while any(e.metric(INVALIDATIONS, kind="path") <= n for e, n in zip(edges, base, strict=True)):
        assert time.monotonic() < deadline, f"an edge never heard {publisher.endpoint}"
        publisher.publish("zeromesh.invalidate.path", "/__warm-up__")
        time.sleep(0.05)


def test_an_invalidation_through_one_broker_reaches_edges_on_the_others(cards, edge_factory):
    bs, publishers = cards
    edges = [edge_factory(ROUTES, on=bs[0], env=lists(bs)), edge_factory(ROUTES, on=bs[1], env=lists(bs[::-1]))]
    for p in publishers:  # each edge hears both brokers' PUBs (the slow joiner)
        heard_through(p, edges)
    for e in edges:
        cached(e, "/cards/1")
    before = [e.metric(INVALIDATIONS, kind="path") for e in edges]
    publishers[0].publish("zeromesh.invalidate.path", "/cards/1")
    applied = [wait_metric_above(e, INVALIDATIONS, n, kind="path") for e, n in zip(edges, before, strict=True)]
    after = [e.get("/cards/1").cache for e in edges]
    print(f"\npath invalidations applied per edge {applied}; /cards/1 after the publish through a: {after}")
    assert after == ["MISS", "MISS"]


def test_an_invalidation_lost_from_a_broker_that_died_is_replayed_from_the_stream(cards, edge_factory, redis_server):
    """The edge hears a's PUB through a link the test cuts: the invalidation published through a is
    lost on the way, a is SIGKILLed, and the edge's catch-up finds it in the shared stream."""
    bs, publishers = cards
    proxy = TCPProxy(bs[0].pub_port)
    try:
        env = lists(bs) | {"ZEROMESH_PUB": f"{proxy.endpoint},{bs[1].pub_endpoint}"}
        edge = edge_factory(ROUTES, on=bs[1], env=env)
        for p in publishers:
            heard_through(p, [edge])
        cached(edge, "/cards/1", "/cards/2")
        proxy.cut_off()
        publishers[0].publish("zeromesh.invalidate.path", "/cards/1")  # lost on the way to the edge
        wait_until(
            lambda: any(f[b"body"] == b"/cards/1" for _, f in redis_server.client().xrange(STREAM)),
            5,
            message="the event in the stream",
        )
        bs[0].kill()
        assert edge.get("/cards/1").cache == "HIT"  # the edge does not know yet
        replayed = wait_metric_above(edge, INVALIDATIONS, 0, timeout=15, kind="replayed")
        flushes = {k: edge.metric(INVALIDATIONS, kind=k) for k in ("flush_gap", "flush_epoch")}
        states = [edge.get(p).cache for p in ("/cards/1", "/cards/2")]
        print(f"\nreplayed {replayed:.0f}, flushes {flushes}; /cards/1 and /cards/2 after the catch-up: {states}")
        assert states == ["MISS", "HIT"] and flushes == {"flush_gap": 0, "flush_epoch": 0}
    finally:
        proxy.close()
