# SPDX-License-Identifier: MIT
"""Processes for the render tests: `zeromesh node render`, the demo workers, the gevent test worker."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from zeromesh import Client

from ..conftest import ROOT, scaled
from .conftest import wait_registered

HERE = Path(__file__).resolve().parent
TEST_TEMPLATES = HERE / "render_templates"
TEST_SITE = HERE / "render_site.py"
DEMO = ROOT / "nodes" / "demo"


class Proc:
    """A subprocess with its log in tmp_path; terminate then wait, every wait bounded."""

    def __init__(self, tmp_path: Path, label: str, cmd: list[str], env: dict[str, str]) -> None:
        self.label = label
        self.log_path = tmp_path / f"{label}.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=scaled(5))
        self._log.close()


@pytest.fixture
def mesh_env(broker, redis_server) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ZEROMESH_BROKER=broker.endpoint, ZEROMESH_PUB=broker.pub_endpoint, ZEROMESH_REDIS_URL=redis_server.url)
    return env


@pytest.fixture
def spawn(tmp_path, mesh_env, client):
    """spawn(kind, label, *args): start "render" (a render node), "demo" (demo workers) or "green"
    (render_green_main.py) and wait until the broker lists it."""
    procs: list[Proc] = []

    def start(kind: str, label: str, *args: str, wait: bool = True) -> Proc:
        if kind == "render":
            cmd = [sys.executable, "-m", "zeromesh", "node", "render", "--label", label, *args]
        elif kind == "demo":
            cmd = [sys.executable, "-m", "zeromesh.nodes.demo.workers", "--label", label, *args]
        elif kind == "green":
            cmd = [sys.executable, str(HERE / "render_green_main.py"), "--endpoint", mesh_env["ZEROMESH_BROKER"],
                   "--label", label, *args]
        else:
            raise ValueError(kind)
        p = Proc(tmp_path, label, cmd, mesh_env)
        procs.append(p)
        if wait:
            try:
                wait_registered(client, label, timeout=15)
            except AssertionError:
                raise AssertionError(f"{label} did not register:\n{p.log()}") from None
        return p

    yield start
    for p in procs:
        p.close()


def render_headers(template: str, site: str | None = None, params: dict | None = None, query: str = "",
                   path: str = "/") -> dict:
    """The headers the edge would send for a render route (protocol/SPEC.md, HTTP mapping)."""
    headers = {"http.method": "GET", "http.path": path, "http.query": query, "http.headers": {},
               "http.host": "test.local", "http.client": "127.0.0.1:1", "http.route": "test",
               "http.params": params or {}, "render.template": template}
    if site is not None:
        headers["render.site"] = site
    return headers


def render(client: Client, template: str, service: str = "render", timeout: float = 2.0, **kw):
    return client.request_full(service, b"", timeout=timeout, headers=render_headers(template, **kw))
