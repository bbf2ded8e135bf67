# SPDX-License-Identifier: MIT
"""The edge routes real HTTP to services and queues: params, virtual hosts, the mapping both ways, push."""

from __future__ import annotations

import http.client
import json
import queue
import socket
import time

import pytest

from zeromesh import Client, Reply

from ..conftest import scaled

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROUTES = """
[[route]]
name = "card-brand"
host = "*.brand.test"
path = "/cards/{id}"
service = "inspect"
template = "card.html"
site = "brand"

[[route]]
name = "card"
path = "/cards/{id}"
method = ["GET", "PUT"]
service = "inspect"
template = "card.html"
site = "ecards"

[[route]]
name = "files"
path = "/static/{rest*}"
service = "inspect"

[[route]]
name = "teapot"
path = "/teapot"
service = "teapot"

[[route]]
name = "big"
path = "/big/{size}"
service = "big"

[[route]]
name = "send"
path = "/send"
method = "POST"
queue = "send"

[[route]]
name = "shout"
path = "/shout"
method = "POST"
topic = "news.shout"
"""


def inspect(job):
    """Answers with what the edge sent: the application headers and the body."""
    return json.dumps({"headers": job.headers, "body": job.text}).encode()


def teapot(job):
    return Reply(
        b"short and stout",
        {
            "http.status": 418,
            "http.headers": {
                "Content-Type": "text/plain",
                "X-Pot": "1",
                "Set-Cookie": ["a=1", "b=2"],
                "Connection": "bogus",
            },
        },
    )


def test_routes_params_hosts_and_the_request_mapping(broker, start_worker, edge_factory):
    start_worker(broker.endpoint, {"inspect": inspect, "teapot": teapot})
    edge = edge_factory(ROUTES)

    r = edge.get("/cards/42?a=1&b=%20x", headers={"Accept-Language": "fr", "X-Many": "1"})
    assert r.status == 200, r
    sent = json.loads(r.body)
    h = sent["headers"]
    assert h["http.method"] == "GET"
    assert h["http.path"] == "/cards/42"
    assert h["http.query"] == "a=1&b=%20x"
    assert h["http.route"] == "card"
    assert h["http.params"] == {"id": "42"}
    assert h["http.host"] == "127.0.0.1"
    assert h["http.client"].startswith("127.0.0.1:")
    assert h["http.headers"]["accept-language"] == "fr"
    assert h["http.headers"]["x-many"] == "1"
    assert (h["render.template"], h["render.site"]) == ("card.html", "ecards")
    assert r.headers["content-type"] == "text/html; charset=utf-8"

    # Virtual hosting: the same path on a co-branded host goes to the brand's route.
    r = edge.get("/cards/7", headers={"Host": "www.brand.test:8080"})
    h = json.loads(r.body)["headers"]
    assert (h["http.route"], h["render.site"], h["http.host"]) == ("card-brand", "brand", "www.brand.test")
    r = edge.get("/cards/7", headers={"Host": "brand.test"})  # *.brand.test is subdomains only
    assert json.loads(r.body)["headers"]["http.route"] == "card"

    # A method the route allows, with a body; percent-decoded UTF-8 paths; a {rest*} parameter.
    r = edge.request("PUT", "/cards/%C3%A9t%C3%A9", body=b"new text")
    sent = json.loads(r.body)
    assert sent["body"] == "new text" and sent["headers"]["http.params"] == {"id": "été"}
    r = edge.get("/static/css/site.css")
    assert json.loads(r.body)["headers"]["http.params"] == {"rest": "css/site.css"}

    # The reply sets the status and headers; hop-by-hop headers from a service are dropped.
    r = edge.get("/teapot")
    assert (r.status, r.body) == (418, b"short and stout")
    assert r.headers["content-type"] == "text/plain" and r.headers["x-pot"] == "1"
    assert r.headers.get("connection") != "bogus"

    r = edge.request("HEAD", "/cards/42")  # as the GET, without the body
    assert (r.status, r.body) == (200, b"") and int(r.headers["content-length"]) > 0

    assert edge.get("/nowhere").status == 404
    r = edge.request("DELETE", "/cards/1")
    assert r.status == 405 and r.headers["allow"] == "GET, PUT"


def test_an_encoded_slash_stays_inside_its_segment(broker, start_worker, edge_factory):
    start_worker(broker.endpoint, {"inspect": inspect})
    edge = edge_factory(ROUTES)
    r = edge.get("/cards/a%2Fb")
    assert r.status == 200, r
    h = json.loads(r.body)["headers"]
    assert (h["http.route"], h["http.params"], h["http.path"]) == ("card", {"id": "a/b"}, "/cards/a/b")
    assert edge.get("/cards/a/b").status == 404  # a real slash is a separator: no route has two segments
    r = edge.get("/static/x%2fy/z.css")  # lower case too; {rest*} keeps both kinds of slash
    assert json.loads(r.body)["headers"]["http.params"] == {"rest": "x/y/z.css"}
    assert edge.get("/cards/a%00b").status == 400


def test_reply_header_values_lists_repeat_numbers_become_text(broker, start_worker, edge_factory):
    def typed(job):
        return Reply(b"ok", {"http.headers": {"X-Count": 3, "X-Ratio": 0.5, "Link": ["</a>; rel=a", "</b>; rel=b"]}})

    def wrong(job):
        return Reply(b"ok", {"http.headers": {"X-Flag": True}})

    start_worker(broker.endpoint, {"teapot": typed, "big": wrong})
    edge = edge_factory(ROUTES)
    conn = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=scaled(10))
    try:
        conn.request("GET", "/teapot")
        resp = conn.getresponse()
        resp.read()
        got = [(k.lower(), v) for k, v in resp.getheaders() if k.lower() in ("x-count", "x-ratio", "link")]
    finally:
        conn.close()
    assert got == [("x-count", "3"), ("x-ratio", "0.5"), ("link", "</a>; rel=a"), ("link", "</b>; rel=b")]
    r = edge.get("/big/1")  # a boolean is no header value: the reply is unusable
    assert r.status == 502 and "error id:" in r.text


def big(job):
    size = int(job.headers["http.params"]["size"])
    return bytes(i % 251 for i in range(size))


@pytest.mark.parametrize("size", [200_000, 3_000_000], ids=["joined-with-headers", "sent-apart"])
def test_big_bodies_reach_a_slow_reader_whole(broker, start_worker, edge_factory, size):
    # More than a socket buffer holds, to a browser that waits before reading: the first
    # send() takes part of it, the rest must follow.
    start_worker(broker.endpoint, {"big": big})
    edge = edge_factory(ROUTES)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=scaled(10)) as s:
        if size < 1_000_000:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # (smaller windows crawl on delayed ACKs)
        s.sendall(f"GET /big/{size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.5)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and f"Content-Length: {size}".encode() in head
        while len(body) < size:
            chunk = s.recv(65536)
            assert chunk, f"connection closed after {len(body)} of {size} bytes"
            body += chunk
    assert body == bytes(i % 251 for i in range(size))


def test_push_route_answers_202_with_the_job_id(broker, start_worker, edge_factory):
    got: queue.Queue = queue.Queue()
    start_worker(broker.endpoint, {"send": lambda job: got.put(job)})
    edge = edge_factory(ROUTES)
    r = edge.request("POST", "/send?to=ann", body=b'{"card": 42}', headers={"Content-Type": "application/json"})
    assert r.status == 202, r
    job_id = json.loads(r.body)["id"]
    job = got.get(timeout=scaled(5))
    assert job.id == job_id
    assert job.body == b'{"card": 42}'
    assert job.headers["http.method"] == "POST" and job.headers["http.query"] == "to=ann"
    assert job.headers["http.headers"]["content-type"] == "application/json"
    assert job.headers["http.route"] == "send"


def test_publish_route_answers_202_with_the_event_id(broker, edge_factory):
    edge = edge_factory(ROUTES)
    with Client(broker.endpoint, broker.pub_endpoint, green=False) as client, client.subscribe("news.") as sub:
        deadline = time.monotonic() + scaled(10)
        ids = []
        while True:  # the slow joiner: post until the subscription hears one
            r = edge.request("POST", "/shout", body=b"hello all", headers={"X-From": "ann"})
            assert r.status == 202, r
            ids.append(json.loads(r.body)["id"])
            event = sub.next(timeout=0.1)
            if event is not None:
                break
            assert time.monotonic() < deadline, "no event published"
        assert (event.topic, event.body) == ("news.shout", b"hello all")
        assert event.headers["http.headers"]["x-from"] == "ann" and event.headers["http.route"] == "shout"
        assert event.id in ids
