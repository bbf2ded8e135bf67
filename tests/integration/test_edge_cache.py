# SPDX-License-Identifier: MIT
"""The full-page cache over real HTTP: MISS then HIT, TTL, vary headers, STALE when the service is down,
fallbacks, and feature switches from Redis and pub/sub."""

from __future__ import annotations

import itertools
import json
import time

import pytest

from zeromesh import Client, Reply

from ..conftest import scaled, wait_until
from .edge_helpers import warm_up_invalidations

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROUTES = """
[[route]]
name = "page"
path = "/page/{id}"
service = "page"
cache_ttl_s = 1

[[route]]
name = "lang"
path = "/lang"
service = "page"
cache_ttl_s = 30
vary_headers = ["Accept-Language"]

[[route]]
name = "nocache"
path = "/nocache"
service = "page"
cache_ttl_s = 30

[[route]]
name = "reply-ttl"
path = "/reply-ttl/{ttl}"
service = "page"

[[route]]
name = "short-reply-ttl"
path = "/short/{ttl}"
service = "page"
cache_ttl_s = 30

[[route]]
name = "down"
path = "/down"
service = "nobody"
cache_ttl_s = 30
fallback = { body = "<p>resting</p>", status = 200 }

[[route]]
name = "recs"
path = "/recs"
service = "page"
feature = "recommendations"
fallback = "<p>no recommendations today</p>"

[[route]]
name = "recs-nofallback"
path = "/recs2"
service = "page"
feature = "recommendations"
"""


@pytest.fixture
def page_worker(broker, start_worker):
    counter = itertools.count(1)

    def page(job):
        n = next(counter)
        lang = job.headers["http.headers"].get("accept-language", "")
        headers = {"cache.tags": ["page", f"page:{job.headers['http.params'].get('id', '')}"]}
        if job.headers["http.path"] == "/nocache":
            headers["cache.ttl"] = 0
        if job.headers["http.route"] in ("reply-ttl", "short-reply-ttl"):
            headers["cache.ttl"] = float(job.headers["http.params"]["ttl"])
        return Reply(f"render {n} {job.headers['http.path']} {lang}".encode(), headers)

    return start_worker(broker.endpoint, {"page": page})


def test_miss_then_hit_then_expiry(broker, page_worker, edge_factory):
    edge = edge_factory(ROUTES)
    first = edge.get("/page/1")
    assert (first.status, first.cache) == (200, "MISS")
    second = edge.get("/page/1")
    assert (second.cache, second.body) == ("HIT", first.body)
    assert edge.get("/page/1?x=1").cache == "MISS"  # the query is part of the key
    assert edge.get("/page/1", headers={"Host": "other.test"}).cache == "MISS"  # and so is the host
    time.sleep(1.1)
    third = edge.get("/page/1")
    assert third.cache == "MISS" and third.body != first.body
    m = edge.metrics()
    assert m['zeromesh_edge_cache_total{result="hit"}'] == 1
    assert m['zeromesh_edge_cache_total{result="miss"}'] == 4
    assert m["zeromesh_edge_cache_entries"] >= 1


def test_vary_headers_and_reply_ttl_zero(broker, page_worker, edge_factory):
    edge = edge_factory(ROUTES)
    fr = edge.get("/lang", headers={"Accept-Language": "fr"})
    de = edge.get("/lang", headers={"Accept-Language": "de"})
    assert fr.body.endswith(b"fr") and de.body.endswith(b"de")
    assert fr.headers["vary"] == "accept-language"
    again = edge.get("/lang", headers={"Accept-Language": "fr"})
    assert (again.cache, again.body) == ("HIT", fr.body)
    # cache.ttl = 0 in the reply: not cached, yet still marked, as every cacheable response is.
    assert [edge.get("/nocache").cache for _ in range(2)] == ["MISS", "MISS"]


def test_a_replys_cache_ttl_overrides_the_routes(broker, page_worker, edge_factory):
    edge = edge_factory(ROUTES)
    # The route says 0 (not cached), the reply says 30 s: cached.
    first = edge.get("/reply-ttl/30")
    assert (first.status, first.cache) == (200, "MISS")
    assert (edge.get("/reply-ttl/30").cache, edge.get("/reply-ttl/30").body) == ("HIT", first.body)
    # The route says 0, and so does the reply: never cached.
    assert [edge.get("/reply-ttl/0").cache for _ in range(2)] == ["MISS", "MISS"]
    # The route says 30 s, the reply 0.5 s: the reply's shorter life wins.
    short = edge.get("/short/0.5")
    assert edge.get("/short/0.5").cache == "HIT"
    time.sleep(0.6)
    again = edge.get("/short/0.5")
    assert again.cache == "MISS" and again.body != short.body


def test_stale_copy_served_when_the_service_is_down(broker, page_worker, edge_factory):
    edge = edge_factory(ROUTES)
    fresh = edge.get("/page/2")
    assert fresh.cache == "MISS"
    page_worker.stop(grace=scaled(2))  # DISCONNECT: the broker answers no_responders from now on
    time.sleep(1.1)  # past the 1 s TTL, well within the grace period
    stale = edge.get("/page/2")
    assert (stale.status, stale.cache, stale.body) == (200, "STALE", fresh.body)
    assert edge.metric("zeromesh_edge_cache_total", result="stale") == 1
    never_cached = edge.get("/page/3")
    assert (never_cached.status, never_cached.cache) == (503, "MISS")


def test_fallback_when_the_service_fails_and_nothing_is_cached(broker, edge_factory):
    edge = edge_factory(ROUTES)
    r = edge.get("/down")
    assert (r.status, r.body, r.headers["x-fallback"]) == (200, b"<p>resting</p>", "no_workers")


def test_feature_switches_from_redis_and_pubsub(broker, redis_server, page_worker, edge_factory):
    redis_server.client().hset("zeromesh:features", "recommendations", "off")
    edge = edge_factory(ROUTES)
    r = edge.get("/recs")
    assert (r.status, r.body, r.headers["x-fallback"]) == (200, b"<p>no recommendations today</p>", "feature_off")
    r = edge.get("/recs2")
    assert r.status == 503 and "retry-after" in r.headers
    assert edge.get("/page/9").status == 200  # core pages keep working

    with Client(broker.endpoint, broker.pub_endpoint, green=False) as client:
        warm_up_invalidations(client, edge)
        client.publish("zeromesh.feature", json.dumps({"name": "recommendations", "on": True}))
        wait_until(
            lambda: edge.get("/recs").status == 200 and edge.get("/recs").body.startswith(b"render"),
            5,
            message="the route back on",
        )
        client.publish("zeromesh.feature", json.dumps({"name": "recommendations", "on": False}))
        wait_until(
            lambda: edge.get("/recs").headers.get("x-fallback") == "feature_off", 5, message="the route off again"
        )
    assert edge.metric("zeromesh_edge_errors_total", kind="feature_off") >= 3
