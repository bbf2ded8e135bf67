# SPDX-License-Identifier: MIT
"""Helpers of the render tests: where the test templates and site live, and a render request as
the edge would send it (the spawn fixture that starts render nodes is in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from zeromesh import Client

from ..conftest import ROOT

HERE = Path(__file__).resolve().parent
TEST_TEMPLATES = HERE / "render_templates"
TEST_SITE = HERE / "render_site.py"
DEMO = ROOT / "nodes" / "demo"


def render_headers(
    template: str, site: str | None = None, params: dict | None = None, query: str = "", path: str = "/"
) -> dict:
    """The headers the edge would send for a render route (protocol/SPEC.md, HTTP mapping)."""
    headers = {
        "http.method": "GET",
        "http.path": path,
        "http.query": query,
        "http.headers": {},
        "http.host": "test.local",
        "http.client": "127.0.0.1:1",
        "http.route": "test",
        "http.params": params or {},
        "render.template": template,
    }
    if site is not None:
        headers["render.site"] = site
    return headers


def render(client: Client, template: str, service: str = "render", timeout: float = 2.0, **kw):
    return client.request_full(service, b"", timeout=timeout, headers=render_headers(template, **kw))
