# SPDX-License-Identifier: MIT
"""HTTP request -> message headers, REPLY -> HTTP response, as the SPEC's HTTP mapping says."""

from __future__ import annotations

from email.message import Message

import pytest

from zeromesh.nodes.edge.mapping import (
    BadReply,
    cacheable_response,
    http_headers,
    reply_to_response,
    request_headers,
    request_host,
    request_path,
    status_line,
)
from zeromesh.nodes.edge.routes import Route

pytestmark = pytest.mark.unit


def environ(**extra):
    env = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/cards/42",
        "QUERY_STRING": "a=1",
        "REMOTE_ADDR": "10.0.0.9",
        "REMOTE_PORT": "5123",
        "HTTP_HOST": "www.example.com:8080",
        "HTTP_ACCEPT": "text/html",
    }
    env.update(extra)
    return env


def test_request_headers_follow_the_mapping():
    route = Route(
        name="card",
        methods=frozenset({"GET"}),
        path="/cards/{id}",
        service="render",
        template="card.html",
        site="ecards",
    )
    env = environ()
    h = request_headers(env, route, {"id": "42"}, request_path(env), request_host(env))
    assert h == {
        "http.method": "GET",
        "http.path": "/cards/42",
        "http.query": "a=1",
        "http.headers": {"host": "www.example.com:8080", "accept": "text/html"},
        "http.host": "www.example.com",
        "http.client": "10.0.0.9:5123",
        "http.route": "card",
        "http.params": {"id": "42"},
        "render.template": "card.html",
        "render.site": "ecards",
    }
    plain = Route(name="api", methods=frozenset({"GET"}), path="/x", service="api")
    h = request_headers(env, plain, {}, "/x", "h")
    assert "render.template" not in h and "render.site" not in h


def test_headers_from_the_parsed_list_join_repeats():
    raw = Message()
    for name, value in [
        ("Host", "h"),
        ("X-Tag", "a"),
        ("x-tag", "b"),
        ("Cookie", "a=1"),
        ("Cookie", "b=2"),
        ("Content-Type", "text/plain"),
    ]:
        raw[name] = value
    assert http_headers({"zeromesh.headers": raw}) == {
        "host": "h",
        "x-tag": "a, b",
        "cookie": "a=1; b=2",
        "content-type": "text/plain",
    }
    # Hop-by-hop headers, and those Connection names, belong to the connection, not the message.
    for name, value in [
        ("Connection", "keep-alive, X-Private"),
        ("Keep-Alive", "timeout=5"),
        ("X-Private", "1"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
    ]:
        raw[name] = value
    assert set(http_headers({"zeromesh.headers": raw})) == {"host", "x-tag", "cookie", "content-type"}
    # Without the handler's list (another WSGI server), from the environ.
    assert http_headers({"HTTP_X_TAG": "a,b", "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": ""}) == {
        "x-tag": "a,b",
        "content-type": "text/plain",
    }


@pytest.mark.parametrize(
    "host, expected",
    [("www.Example.com:8080", "www.example.com"), ("example.com", "example.com"), ("[::1]:8080", "[::1]"), ("", "")],
)
def test_host_without_port(host, expected):
    assert request_host({"HTTP_HOST": host}) == expected


def test_path_is_text_even_though_wsgi_hands_it_over_as_latin1():
    assert request_path({"PATH_INFO": "/cartes/\xc3\xa9t\xc3\xa9"}) == "/cartes/été"
    assert request_path({"PATH_INFO": "/bad/\xff"}) == "/bad/\ufffd"
    assert request_path({"PATH_INFO": ""}) == "/"


def test_reply_to_response():
    r = reply_to_response(
        {
            "http.status": 201,
            "http.headers": {
                "X-One": "1",
                "Set-Cookie": ["a=1", "b=2"],
                "content-type": "application/json",
                "X-N": 5,
                "X-F": 1.5,
                "X-L": [1, "two"],
            },
            "cache.tags": ["card:1"],
            "cache.ttl": 7,
        },
        b"{}",
    )
    assert r.status == "201 Created" and r.code == 201
    assert r.headers == [
        ("Content-Type", "application/json"),
        ("X-One", "1"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-N", "5"),
        ("X-F", "1.5"),
        ("X-L", "1"),
        ("X-L", "two"),
        ("Content-Length", "2"),
    ]
    assert (r.tags, r.ttl) == (frozenset({"card:1"}), 7.0)
    r = reply_to_response({}, b"hello")
    assert r.status == "200 OK"
    assert r.headers == [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "5")]
    assert (r.tags, r.ttl) == (frozenset(), None)
    # Framing and hop-by-hop headers are the edge's own.
    r = reply_to_response(
        {
            "http.headers": {
                "Connection": "close",
                "Transfer-Encoding": "chunked",
                "Content-Length": "99",
                "X-Cache": "HIT",
            }
        },
        b"",
    )
    assert r.headers == [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "0")]


@pytest.mark.parametrize(
    "headers",
    [
        {"http.status": "200"},
        {"http.status": 99},
        {"http.status": True},
        {"http.status": 600},
        {"http.headers": ["a"]},
        {"http.headers": {"X-A": "1\r\nInjected: yes"}},
        {"http.headers": {"Bad Name": "1"}},
        {"http.headers": {"X-A": "€"}},
        {"cache.tags": "card:1"},
        {"cache.tags": [1]},
        {"cache.ttl": -1},
        {"cache.ttl": "5"},
        {"http.headers": {"X-A": True}},
        {"http.headers": {"X-A": None}},
        {"http.headers": {"X-A": {"b": 1}}},
        {"http.headers": {"X-A": [["nested"]]}},
        {"http.headers": {"X-A": b"bin"}},
    ],
)
def test_unusable_replies_are_refused(headers):
    with pytest.raises(BadReply):
        reply_to_response(headers, b"")


def test_what_may_be_cached():
    assert cacheable_response(reply_to_response({}, b"x"))
    assert not cacheable_response(reply_to_response({"http.status": 404}, b"x"))
    assert not cacheable_response(reply_to_response({"http.headers": {"Set-Cookie": "s=1"}}, b"x"))
    assert not cacheable_response(reply_to_response({"http.headers": {"Cache-Control": "private, max-age=5"}}, b""))
    assert cacheable_response(reply_to_response({"http.headers": {"Cache-Control": "max-age=5"}}, b""))


def test_status_lines():
    assert status_line(404) == "404 Not Found" and status_line(499) == "499 Unknown"
