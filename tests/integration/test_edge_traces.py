# SPDX-License-Identifier: MIT
"""The edge's traces (SPEC 12.1): a traceparent's trace-id or a fresh one, on every response and in
the access log, and a page's gathered parts under the page request in `zeromesh trace --trace`."""

from __future__ import annotations

import re

import pytest

from zeromesh import tracing

from ..conftest import scaled, wait_until
from .test_render_node import NODE_ARGS, backends  # noqa: F401 - a fixture, used by name

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROUTES = """
[[route]]
name = "parts"
path = "/parts/{id}"
service = "render"
template = "parts.html"
cache_ttl_s = 60
"""

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HEX32 = re.compile(r"[0-9a-f]{32}")


def test_a_page_and_its_gathered_parts_share_the_callers_trace(client, backends, spawn, edge_factory):  # noqa: F811
    spawn("render", "r-trace", *NODE_ARGS)
    edge = edge_factory(ROUTES, args=["--access-log"])
    r = edge.get("/parts/7?slow=0.01", headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
    assert r.status == 200, r
    assert r.headers["x-zeromesh-trace"] == TRACE

    def tree():
        events = tracing.collect(client, TRACE, by="trace")["events"]
        done = {e["service"] for e in events if e["event"] == "replied"}
        return events if {"render", "meta", "slow"} <= done else None

    events = wait_until(tree, scaled(10), 0.05, "the page and its parts replied")
    (page,) = {e["id"] for e in events if e["service"] == "render"}
    parts = {e["service"]: e.get("parent") for e in events if e["service"] != "render"}
    assert parts == {"meta": page, "slow": page}
    assert all(e["trace"] == TRACE for e in events)
    text = tracing.tree_text(events)
    assert text.splitlines()[0].startswith(f"request {page} render")
    assert sorted(line.split()[2] for line in text.splitlines()[1:]) == ["meta", "slow"]
    assert all(line.startswith("  request ") for line in text.splitlines()[1:])
    wait_until(lambda: f"trace={TRACE}" in edge.log(), scaled(5), message="the access line names the trace")

    # A cache hit: a trace of its own (the incoming one when valid), and nothing sent to the mesh.
    hit = edge.get("/parts/7?slow=0.01")
    assert hit.cache == "HIT" and HEX32.fullmatch(hit.headers["x-zeromesh-trace"])
    assert hit.headers["x-zeromesh-trace"] != TRACE
    assert tracing.collect(client, hit.headers["x-zeromesh-trace"], by="trace")["events"] == []


@pytest.mark.parametrize(
    "header", [f"01-{TRACE}-00f067aa0ba902b7-01", f"00-{'0' * 32}-00f067aa0ba902b7-01", "nonsense"]
)
def test_an_invalid_traceparent_gets_a_fresh_trace_on_errors_too(broker, edge_factory, header):
    edge = edge_factory(ROUTES)
    for path in ("/nowhere", "/healthz"):
        r = edge.get(path, headers={"traceparent": header})
        got = r.headers["x-zeromesh-trace"]
        assert HEX32.fullmatch(got) and got != TRACE, (path, r)
