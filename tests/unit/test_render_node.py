# SPDX-License-Identifier: MIT
"""RenderNode.handle without sockets, the demo's catalog, the CLI helpers, the demo route table."""

from __future__ import annotations

import datetime
import json

import pytest

from zeromesh import Job, Worker
from zeromesh.cli import build_parser
from zeromesh.cli.env import redis_url
from zeromesh.cli.nodes import wants_gevent
from zeromesh.nodes import Part, Site
from zeromesh.nodes.demo.catalog import TIMEZONES, BadSend, Catalog, parse_send
from zeromesh.nodes.features import FeatureSwitches
from zeromesh.nodes.render import RenderNode, content_type
from zeromesh.nodes.templating import TemplateFailure, TemplateSets
from zeromesh.realthreads import RealEvent

from ..conftest import ROOT
from .test_render_parts import FakeGreenClient

pytestmark = pytest.mark.unit


@pytest.fixture
def node(tmp_path):
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "item.html").write_text("{{ item.name }}|{{ reco | join(',') }}|{{ request.path }}")
    (tmp_path / "default" / "plain.html").write_text("{{ id }} {{ params.id }}")
    (tmp_path / "default" / "style.css").write_text("b { color: {{ color }} }")
    (tmp_path / "default" / "oops.html").write_text("\n{{ 1 // 0 }}")
    site = Site()

    @site.page("item.html")
    def item(req, gather):
        got = gather(
            item=Part("items", {"id": req.params["id"]}),
            reco=Part("reco", optional=True, default=["none"], feature="reco"),
        )
        if req.args.get("ttl"):
            req.cache_ttl = int(req.args["ttl"])
        return {"item": got["item"], "reco": got["reco"]}, [f"item:{req.params['id']}"]

    @site.page("style.css")
    def style(req, gather):
        return {"color": "red"}

    @site.page("wrong.html")
    def wrong(req, gather):
        return ["not", "a", "dict"]

    worker = Worker("tcp://127.0.0.1:1", concurrency=2, pool="gevent")
    client = FakeGreenClient({"items": (0, {"name": "Pen"}), "reco": (0, ["a", "b"])})
    n = RenderNode(worker, client, TemplateSets(tmp_path), site, features=FeatureSwitches())
    yield n
    worker.context.term()


def request(template, params=None, query="", timeout_ms=2000, site=None):
    headers = {"render.template": template, "http.params": params or {}, "http.query": query, "http.path": "/p"}
    if site:
        headers["render.site"] = site
    return Job(
        "request",
        "render",
        {"id": "r1", "timeout_ms": timeout_ms, "headers": headers},
        b"",
        RealEvent(),
        lambda item: None,
    )


def test_a_page_renders_with_its_parts_tags_and_headers(node):
    reply = node.handle(request("item.html", {"id": "4"}))
    assert reply.text == "Pen|a,b|/p"
    assert reply.headers == {
        "http.status": 200,
        "http.headers": {"Content-Type": "text/html; charset=utf-8"},
        "cache.tags": ["feature:reco", "item:4"],
    }
    assert node.handle(request("item.html", {"id": "4"}, query="ttl=7")).headers["cache.ttl"] == 7
    node.features.set("reco", False)
    assert node.handle(request("item.html", {"id": "4"})).text == "Pen|none|/p"
    assert node.worker.handlers["render"] == node.handle


def test_a_degraded_page_is_cached_briefly(node):
    node.client.services["reco"] = (5, [])
    reply = node.handle(request("item.html", {"id": "1"}, timeout_ms=300))
    assert reply.text == "Pen|none|/p"
    assert reply.headers["cache.ttl"] == 5 and reply.headers["http.headers"]["X-Degraded"] == "reco"


def test_templates_without_pages_get_the_params_and_content_types_follow_the_name(node):
    assert node.handle(request("plain.html", {"id": "9"})).text == "9 9"
    css = node.handle(request("style.css"))
    assert css.text == "b { color: red }" and css.headers["http.headers"]["Content-Type"] == "text/css; charset=utf-8"
    assert content_type("x.json") == "application/json; charset=utf-8"


def test_errors_name_what_went_wrong(node):
    with pytest.raises(TemplateFailure, match="^oops.html line 2: ZeroDivisionError"):
        node.handle(request("oops.html"))
    with pytest.raises(ValueError, match="render.template"):
        node.handle(Job("request", "render", {"id": "r", "timeout_ms": 100}, b"", RealEvent(), lambda i: None))
    with pytest.raises(TypeError, match="wrong.html"):
        node.handle(request("wrong.html"))
    assert node.failed == 3 and node.rendered == 0


def test_a_render_node_wants_gevent_parts(tmp_path):
    (tmp_path / "default").mkdir()
    worker = Worker("tcp://127.0.0.1:1")
    try:
        with pytest.raises(TypeError, match="pool='gevent'"):
            RenderNode(worker, FakeGreenClient({}), TemplateSets(tmp_path), Site())
    finally:
        worker.context.term()


# -- the demo ------------------------------------------------------------------------


def test_send_bodies_are_forms_or_json():
    assert parse_send(b"card_id=3&to=Ada&from=Grace&message=Hi%21") == {
        "card_id": "3",
        "to": "Ada",
        "from": "Grace",
        "message": "Hi!",
        "deliver_at": "",
    }
    assert parse_send(b'{"card_id": 3}', "application/json") == {
        "card_id": "3",
        "to": "a friend",
        "from": "someone",
        "message": "",
        "deliver_at": "",
    }
    for bad in (b"to=Ada", b"{nope", b"[1]"):
        with pytest.raises(BadSend):
            parse_send(bad)


def test_deliver_on_is_the_recipients_wall_clock():
    """08:00 on 25 December in Paris is 07:00 UTC; a time already past means now; bad input is refused."""
    year = datetime.date.today().year + 1
    sent = parse_send(f"card_id=3&deliver_on={year}-12-25T08:00&timezone=Europe/Paris".encode())
    at = datetime.datetime.fromisoformat(sent["deliver_at"])
    assert at.astimezone(datetime.UTC).hour == 7 and at.utcoffset() == datetime.timedelta(hours=1)
    assert parse_send(b"card_id=3&deliver_on=2001-01-01T08:00&timezone=UTC")["deliver_at"] == ""
    for bad in (b"card_id=3&deliver_on=tomorrow", b"card_id=3&deliver_on=2031-01-01T08:00&timezone=Mars/Base"):
        with pytest.raises(BadSend):
            parse_send(bad)
    template = (ROOT / "nodes" / "demo" / "templates" / "default" / "_send_form.html").read_text()
    assert all(f'"{zone}"' in template for zone in TIMEZONES)  # the form offers what parse_send takes


def test_catalog_counts_sends_and_relates_cards():
    catalog = Catalog()
    assert len(catalog.list()) == 8 and catalog.get("99") is None
    assert catalog.record_sent("2") == 1 and catalog.get("2")["sent"] == 1
    related = catalog.related("4")  # "care": Thinking of You (6) first
    assert related[0]["id"] == "6" and len(related) == 3 and "4" not in [r["id"] for r in related]
    json.dumps(catalog.list())


# -- CLI -------------------------------------------------------------------------------


def test_cli_node_verbs(monkeypatch, tmp_path):
    assert wants_gevent(["node", "render"]) and wants_gevent(["--log-level", "DEBUG", "node"])
    assert not wants_gevent(["request", "node"]) and not wants_gevent([])
    args = build_parser().parse_args(["node", "render", "--templates", "t", "--concurrency", "7", "--dev"])
    assert (args.templates, args.concurrency, args.dev, args.service) == ("t", 7, True, "render")
    args = build_parser().parse_args(["invalidate", "--tag", "a", "--tag", "b", "--path", "/cards"])
    assert (args.tag, args.path, args.all) == (["a", "b"], ["/cards"], False)
    assert build_parser().parse_args(["feature", "off", "reco"]).state == "off"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZEROMESH_REDIS_URL", raising=False)
    monkeypatch.delenv("ZEROMESH_DATA_DIR", raising=False)
    assert redis_url() == f"unix://{tmp_path}/var/redis/redis.sock"
    monkeypatch.setenv("ZEROMESH_REDIS_URL", "none")
    assert redis_url() == ""


def test_the_demo_route_table_is_valid_for_the_edge():
    routes = pytest.importorskip("zeromesh.nodes.edge.routes")
    table = routes.load_routes(ROOT / "nodes" / "demo" / "routes.toml")
    holiday = table.match("GET", "holiday.localhost", "/cards/5")
    assert holiday.route.site == "holiday" and holiday.params == {"id": "5"}
    card = table.match("GET", "127.0.0.1", "/cards/5")
    assert (card.route.service, card.route.template, card.route.site) == ("render", "card.html", "default")
    send = table.match("POST", "127.0.0.1", "/send").route  # checked by the render nodes, which push to "send"
    assert (send.service, send.template) == ("render", "sent.html")
    templates = {r.template for r in table.routes if r.template}
    assert all((ROOT / "nodes" / "demo" / "templates" / "default" / t).is_file() for t in templates)
