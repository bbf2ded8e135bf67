# SPDX-License-Identifier: MIT
"""The edge's route table: parsing, checking (with clear messages) and matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from zeromesh.nodes.edge import defaults
from zeromesh.nodes.edge.routes import Fallback, RouteError, load_routes, parse_routes

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def table(text: str):
    import tomllib

    return parse_routes(tomllib.loads(text), "routes.toml")


def test_a_full_route_and_its_defaults():
    t = table("""
[[route]]
name = "card"
method = ["GET", "post"]
path = "/cards/{id}"
host = "*.Example.com"
service = "render"
template = "card.html"
site = "ecards"
timeout_s = 2
cache_ttl_s = 30
vary_headers = ["Accept-Language"]
max_body = 10
fallback = { body = "[]", content_type = "application/json", status = 503 }
feature = "cards"

[[route]]
name = "send"
method = "POST"
path = "/send"
queue = "send"

[[route]]
name = "shout"
method = "POST"
path = "/shout"
topic = "news.shout"
""")
    card, send, shout = t.routes
    assert (shout.topic, shout.service, shout.queue, shout.cacheable) == ("news.shout", None, None, False)
    assert card.methods == {"GET", "POST"} and card.host == "*.example.com"
    assert (card.service, card.queue, card.template, card.site) == ("render", None, "card.html", "ecards")
    assert (card.timeout_s, card.cache_ttl_s, card.max_body, card.feature) == (2.0, 30.0, 10, "cards")
    assert card.vary_headers == ("accept-language",) and card.vary_environ == ("HTTP_ACCEPT_LANGUAGE",)
    assert card.fallback == Fallback(b"[]", 503, "application/json")
    assert card.cacheable and not send.cacheable
    assert (send.timeout_s, send.max_body, send.cache_ttl_s, send.fallback) == (
        defaults.TIMEOUT_S,
        defaults.MAX_BODY,
        0.0,
        None,
    )


def test_matching_params_hosts_methods_and_order():
    t = table("""
[[route]]
name = "brand"
host = "*.brand.test"
path = "/cards/{id}"
service = "s"

[[route]]
name = "exact"
host = "shop.test"
path = "/cards/{id}"
service = "s"

[[route]]
name = "any"
path = "/cards/{id}"
method = ["GET", "PUT"]
service = "s"

[[route]]
name = "files"
path = "/static/{dir}/{rest*}"
service = "s"
""")
    m = t.match("GET", "www.brand.test", "/cards/42")
    assert (m.route.name, m.params) == ("brand", {"id": "42"})
    assert t.match("GET", "a.b.brand.test", "/cards/1").route.name == "brand"
    assert t.match("GET", "brand.test", "/cards/1").route.name == "any"  # the wildcard is for subdomains
    assert t.match("GET", "shop.test", "/cards/1").route.name == "exact"
    assert t.match("GET", "", "/cards/1").route.name == "any"
    assert t.match("GET", "x", "/cards/1/more").route is None
    assert t.match("GET", "x", "/cards/").route is None
    m = t.match("GET", "x", "/static/css/a/b.css")
    assert m.params == {"dir": "css", "rest": "a/b.css"}
    assert t.match("GET", "x", "/static/css/").route is None
    m = t.match("DELETE", "x", "/cards/1")
    assert m.route is None and m.allowed == {"GET", "PUT"}
    m = t.match("GET", "x", "/nowhere")
    assert m.route is None and not m.allowed


def test_regex_characters_in_paths_are_literal():
    t = table('[[route]]\nname = "a"\npath = "/a.b/(x)+/{id}"\nservice = "s"\n')
    assert t.match("GET", "", "/a.b/(x)+/1").params == {"id": "1"}
    assert t.match("GET", "", "/aXb/(x)+/1").route is None


@pytest.mark.parametrize(
    "body, message",
    [
        ('name = "a"\npath = "/a"', "give exactly one of service (request/reply), queue (push) or topic (publish)"),
        ('name = "a"\npath = "/a"\nqueue = "q"\ntopic = "t"', "give exactly one of service"),
        ('name = "a"\npath = "/a"\ntopic = "t"\ncache_ttl_s = 5', "GET routes to a service only"),
        ('name = "a"\npath = "/a"\nservice = "s"\nqueue = "q"', "give exactly one of service"),
        ('path = "/a"\nservice = "s"', "name is required"),
        ('name = "a"\npath = "a"\nservice = "s"', "path must start with '/'"),
        ('name = "a"\npath = "/a/{id"\nservice = "s"', "braces must enclose a parameter name"),
        ('name = "a"\npath = "/a/{id}/{id}"\nservice = "s"', "parameter {id} appears twice"),
        ('name = "a"\npath = "/a/{1x}"\nservice = "s"', "braces must enclose a parameter name"),
        ('name = "a"\npath = "/a"\nservice = "s"\ncolour = "red"', "unknown key(s) colour"),
        ('name = "a"\npath = "/a"\nservice = "s"\nmethod = "GET POST"', "is not an HTTP method"),
        ('name = "a"\npath = "/a"\nservice = "s"\nmethod = []', "method must be a string or a non-empty list"),
        ('name = "a"\npath = "/a"\nservice = "s"\nhost = "http://x"', "must be a host name"),
        ('name = "a"\npath = "/a"\nservice = "s"\ntimeout_s = 0', "timeout_s must be more than 0"),
        ('name = "a"\npath = "/a"\nservice = "s"\ntimeout_s = "5"', "timeout_s must be a number of seconds"),
        ('name = "a"\npath = "/a"\nservice = "s"\ncache_ttl_s = -1', "cache_ttl_s must be 0"),
        ('name = "a"\npath = "/a"\nservice = "s"\nmethod = "POST"\ncache_ttl_s = 5', "GET routes to a service only"),
        ('name = "a"\npath = "/a"\nqueue = "q"\ncache_ttl_s = 5', "GET routes to a service only"),
        ('name = "a"\npath = "/a"\nservice = "s"\nmax_body = 1.5', "max_body must be a whole number"),
        ('name = "a"\npath = "/a"\nservice = "s"\nvary_headers = "accept"', "vary_headers must be a list"),
        ('name = "a"\npath = "/a"\nservice = "s"\nfallback = 3', "fallback must be a string or a table"),
        ('name = "a"\npath = "/a"\nservice = "s"\nfallback = {status = 200}', "exactly one of body or file"),
        ('name = "a"\npath = "/a"\nservice = "s"\nfallback = {body = "x", status = 99}', "fallback status"),
        ('name = "a"\npath = "/a"\nservice = "' + "s" * 256 + '"', "service must be 1..255 bytes"),
    ],
)
def test_invalid_routes_are_refused_with_the_reason(body, message):
    with pytest.raises(RouteError) as info:
        table("[[route]]\n" + body + "\n")
    assert str(info.value).startswith("routes.toml: route #1")
    assert message in str(info.value)


def test_table_level_errors():
    with pytest.raises(RouteError, match="the name 'a' is used by an earlier route"):
        table('[[route]]\nname = "a"\npath = "/a"\nservice = "s"\n[[route]]\nname = "a"\npath = "/b"\nservice = "s"\n')
    with pytest.raises(RouteError, match="unknown top-level key"):
        table("[routes]\nx = 1\n")
    with pytest.raises(RouteError, match=r"'route' must be an array of tables: write each as \[\[route\]\]"):
        table('[route]\nname = "a"\n')
    assert len(table("")) == 0


def test_files_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[route]\n")
    with pytest.raises(RouteError, match=rf"{bad}: not valid TOML"):
        load_routes(bad)
    with pytest.raises(RouteError, match="cannot read"):
        load_routes(tmp_path / "missing.toml")


def test_fallback_file_is_read_relative_to_the_table(tmp_path):
    (tmp_path / "sorry.html").write_text("<p>sorry</p>")
    path = tmp_path / "routes.toml"
    path.write_text('[[route]]\nname = "a"\npath = "/a"\nservice = "s"\nfallback = { file = "sorry.html" }\n')
    assert load_routes(path).routes[0].fallback == Fallback(b"<p>sorry</p>")
    path.write_text('[[route]]\nname = "a"\npath = "/a"\nservice = "s"\nfallback = { file = "gone.html" }\n')
    with pytest.raises(RouteError, match="fallback file"):
        load_routes(path)


def test_the_demo_sites_table_loads():
    t = load_routes(ROOT / "nodes" / "demo" / "routes.toml")
    assert len(t) > 0
    assert t.match("GET", "localhost", "/").route is not None
