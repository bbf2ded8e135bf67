# SPDX-License-Identifier: MIT
"""The edge's WSGI app in-process, through wsgiref's validator, with a fake client: no sockets."""

from __future__ import annotations

import io
import json
import tomllib
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import gevent
import pytest

from zeromesh import NoRespondersError, RemoteError, Reply, TimeoutError as ZTimeoutError
from zeromesh.nodes.edge.app import make_app
from zeromesh.nodes.edge.cache import PageCache
from zeromesh.nodes.edge.metrics import EdgeMetrics
from zeromesh.nodes.edge.routes import parse_routes
from zeromesh.nodes.features import FeatureSwitches

pytestmark = pytest.mark.unit

ROUTES = """
[[route]]
name = "page"
path = "/page/{id}"
service = "page"
cache_ttl_s = 10

[[route]]
name = "api"
path = "/api"
method = ["GET", "POST"]
service = "api"
max_body = 10

[[route]]
name = "fb"
path = "/fb"
service = "api"
fallback = "sorry"
feature = "fancy"

[[route]]
name = "push"
path = "/push"
method = "POST"
queue = "jobs"

[[route]]
name = "shout"
path = "/shout"
method = "POST"
topic = "news.shout"
"""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeClient:
    def __init__(self) -> None:
        self.services: dict = {}
        self.calls: list = []
        self.pushed: list = []
        self.broker_up = True

    def request_full(self, service, body=b"", timeout=5.0, wait=False, headers=None, *, trace=None):
        self.calls.append((service, body, timeout, headers))
        handler = self.services.get(service)
        if handler is None:
            raise NoRespondersError("no_responders", f"no worker for {service!r}")
        return handler(body, headers)

    def push(self, queue, body, headers=None, timeout=10.0, *, trace=None, id=None):
        self.pushed.append((queue, body, headers))
        return id or f"job-{len(self.pushed)}"

    def publish(self, topic, body, headers=None, timeout=1.0):
        self.pushed.append((topic, body, headers))
        return f"event-{len(self.pushed)}"

    endpoint = "tcp://fake"

    def status(self):
        if not self.broker_up:
            raise ZTimeoutError("no answer")
        return {"services": {}}


@pytest.fixture
def edge():
    client, clock, metrics, features = FakeClient(), Clock(), EdgeMetrics(), FeatureSwitches()
    routes = parse_routes(tomllib.loads(ROUTES))
    app = make_app(client, routes, PageCache(clock=clock), clock, features=features, metrics=metrics)
    return client, clock, metrics, features, validator(app)


def call(app, path, method="GET", body=b"", headers=None, query=""):
    env = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(body),
    }
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    setup_testing_defaults(env)
    got = {}

    def start_response(status, response_headers, exc_info=None):
        got["status"], got["headers"] = status, dict(response_headers)

    result = app(env, start_response)
    try:
        data = b"".join(result)
    finally:
        result.close()
    return int(got["status"][:3]), got["headers"], data


def sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_miss_hit_expiry_and_stale(edge):
    client, clock, metrics, _, app = edge
    client.services["page"] = lambda body, h: Reply(f"page {h['http.params']['id']}".encode(), {"cache.tags": ["p"]})
    assert call(app, "/page/1")[1]["X-Cache"] == "MISS"
    status, headers, body = call(app, "/page/1")
    assert (status, headers["X-Cache"], body) == (200, "HIT", b"page 1")
    assert len(client.calls) == 1
    clock.now += 11
    del client.services["page"]
    status, headers, body = call(app, "/page/1")  # expired, the service gone: the stale copy
    assert (status, headers["X-Cache"], body) == (200, "STALE", b"page 1")
    status, headers, _ = call(app, "/page/2")  # nothing stale to fall back on
    assert (status, headers["X-Cache"]) == (503, "MISS")
    assert sample(metrics, "zeromesh_edge_cache_total", result="stale") == 1
    assert sample(metrics, "zeromesh_edge_requests_total", route="page", status="200") == 3


def test_concurrent_misses_share_one_call(edge):
    client, _, _, _, app = edge

    def slow(body, h):
        gevent.sleep(0.05)
        return Reply(b"once")

    client.services["page"] = slow
    jobs = [gevent.spawn(call, app, "/page/7") for _ in range(5)]
    gevent.joinall(jobs, timeout=5, raise_error=True)
    assert [j.value[2] for j in jobs] == [b"once"] * 5
    assert len(client.calls) == 1


def test_errors_map_to_statuses(edge):
    client, _, metrics, _, app = edge
    assert call(app, "/nope")[0] == 404
    status, headers, _ = call(app, "/push")
    assert status == 405 and headers["Allow"] == "POST"
    assert call(app, "/api")[0] == 503
    assert call(app, "/api")[1]["Retry-After"] == "1"

    def timeout(body, h):
        raise ZTimeoutError("deadline")

    client.services["api"] = timeout
    assert call(app, "/api")[0] == 504

    def boom(body, h):
        raise RemoteError("remote", "secret detail", "KeyError", "Traceback (most recent call last): ...")

    client.services["api"] = boom
    status, headers, body = call(app, "/api")
    assert status == 502 and b"secret" not in body and b"Traceback" not in body
    assert headers["X-Error-Id"].encode() in body

    def lost(body, h):
        raise RemoteError("worker_lost", "the worker died")

    client.services["api"] = lost
    assert call(app, "/api")[0] == 503
    client.services["api"] = lambda body, h: Reply(b"", {"http.status": "nope"})
    assert call(app, "/api")[0] == 502
    assert call(app, "/api", method="POST", body=b"x" * 11)[0] == 413
    for kind, n in [
        ("not_found", 1),
        ("method_not_allowed", 1),
        ("no_workers", 2),
        ("timeout", 1),
        ("remote", 1),
        ("unavailable", 1),
        ("bad_reply", 1),
        ("too_large", 1),
    ]:
        assert sample(metrics, "zeromesh_edge_errors_total", kind=kind) == n, kind


def test_request_body_and_headers_reach_the_service(edge):
    client, _, _, _, app = edge
    client.services["api"] = lambda body, h: Reply(
        json.dumps({"body": body.decode(), "h": h}).encode(), {"http.status": 201, "http.headers": {"X-A": "b"}}
    )
    status, headers, body = call(app, "/api", method="POST", body=b"hello", query="q=1", headers={"X-Thing": "t"})
    assert (status, headers["X-A"]) == (201, "b")
    sent = json.loads(body)
    assert sent["body"] == "hello"
    assert sent["h"]["http.query"] == "q=1" and sent["h"]["http.headers"]["x-thing"] == "t"
    assert client.calls[-1][2] == 5.0  # the route's timeout is the request's deadline


def test_feature_off_answers_the_fallback(edge):
    client, _, _, features, app = edge
    client.services["api"] = lambda body, h: Reply(b"fancy")
    assert call(app, "/fb")[2] == b"fancy"
    features.set("fancy", False)
    status, headers, body = call(app, "/fb")
    assert (status, body, headers["X-Fallback"]) == (200, b"sorry", "feature_off")
    features.set("fancy", True)
    del client.services["api"]
    assert call(app, "/fb")[1]["X-Fallback"] == "no_workers"


def test_push_and_publish_answer_202_with_the_id(edge):
    client, _, _, _, app = edge
    status, headers, body = call(app, "/push", method="POST", body=b"job")
    assert status == 202 and json.loads(body) == {"id": "job-1"}
    assert client.pushed[0][:2] == ("jobs", b"job") and client.pushed[0][2]["http.route"] == "push"
    assert headers["Content-Type"] == "application/json"
    status, headers, body = call(app, "/shout", method="POST", body=b"hey")
    assert status == 202 and json.loads(body) == {"id": "event-2"}
    assert client.pushed[1][:2] == ("news.shout", b"hey") and client.pushed[1][2]["http.route"] == "shout"


def test_reserved_paths(edge):
    client, _, _, _, app = edge
    status, _, body = call(app, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "alive"
    status, _, body = call(app, "/readyz")  # the broker answers; "page" and "api" have no worker
    assert (status, json.loads(body)["status"]) == (200, "degraded")
    assert json.loads(body)["degraded"] == ["service api: no worker", "service page: no worker"]
    client.broker_up = False
    status, _, body = call(app, "/readyz")
    assert (status, json.loads(body)["broker"], json.loads(body)["status"]) == (503, "down", "not ready")
    assert call(app, "/healthz")[0] == 200  # alive all the same
    status, headers, body = call(app, "/metrics")
    assert status == 200 and b"zeromesh_edge_requests_total" in body
    assert call(app, "/events")[0] == 404  # no event streams configured in this app


def test_head_is_the_get_without_its_body(edge):
    client, _, _, features, app = edge
    client.services["page"] = lambda body, h: Reply(f"page via {h['http.method']}".encode())
    status, headers, body = call(app, "/page/1", method="HEAD")
    assert (status, body, headers["X-Cache"], headers["Content-Length"]) == (200, b"", "MISS", "12")
    status, headers, body = call(app, "/page/1")
    assert (body, headers["X-Cache"]) == (b"page via GET", "HIT")  # the HEAD's GET filled the cache
    assert call(app, "/page/1", method="HEAD")[1]["X-Cache"] == "HIT"
