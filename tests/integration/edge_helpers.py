# SPDX-License-Identifier: MIT
"""Helpers of the HTTP edge tests: the edge as a subprocess on a free port, real HTTP through
http.client, reading its /metrics, and a TCP relay a test can cut (the edge_factory fixture that
starts edges is in conftest.py)."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

from ..conftest import CHILD_LOG_LEVEL, free_port, scaled, wait_until
from ..processes import ChildProcess


class HTTPResult:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def cache(self) -> str | None:
        return self.headers.get("x-cache")

    def __repr__(self) -> str:
        return f"HTTPResult({self.status}, {self.headers}, {self.body[:200]!r})"


def fetch(
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 10.0,
) -> HTTPResult:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(timeout))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return HTTPResult(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


class EdgeProcess(ChildProcess):
    """`python -m zeromesh edge` on a free port, on `broker`'s mesh; ready once /readyz answers 200
    (the broker, and Redis when configured, answer)."""

    def __init__(
        self,
        tmp_path: Path,
        broker,
        routes_text: str | None,
        *,
        env: dict | None = None,
        args: list[str] | None = None,
        label: str = "edge",
    ) -> None:
        self.port = free_port()
        self.tmp_path = tmp_path
        self.label = label
        cmd = [
            sys.executable,
            "-m",
            "zeromesh",
            "--log-level",
            CHILD_LOG_LEVEL,
            "edge",
            "--listen",
            f"127.0.0.1:{self.port}",
            *(args or []),
        ]
        if routes_text is not None:
            self.routes_path = tmp_path / f"{label}-{self.port}.toml"
            self.routes_path.write_text(routes_text)
            cmd += ["--routes", str(self.routes_path)]
        child_env = dict(os.environ)
        child_env.update(broker.env)  # ZEROMESH_BROKER, ZEROMESH_PUB, ZEROMESH_REDIS_URL
        child_env.update(env or {})
        super().__init__(
            f"edge on {self.port}",
            cmd,
            tmp_path / f"{label}-{self.port}.log",
            env=child_env,
            cwd=tmp_path,
            ready=self.answers_ready,
        )

    def answers_ready(self) -> bool:
        try:
            return self.get("/readyz", timeout=2).status == 200
        except OSError:
            return False

    def get(self, path: str, **kw) -> HTTPResult:
        return fetch(self.port, path, **kw)

    def request(self, method: str, path: str, **kw) -> HTTPResult:
        return fetch(self.port, path, method=method, **kw)

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics as {'name{labels}': value}."""
        out = {}
        for line in self.get("/metrics").text.splitlines():
            m = _SAMPLE.match(line)
            if m:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return out

    def metric(self, name: str, **labels: str) -> float:
        want = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
        return self.metrics().get(name + want, 0.0)


def warm_up_invalidations(client, *edges: EdgeProcess, timeout: float = 10.0) -> None:
    """Republish a harmless path invalidation until every edge has applied one (the slow joiner)."""
    base = {id(e): e.metric("zeromesh_edge_invalidations_total", kind="path") for e in edges}
    deadline = time.monotonic() + scaled(timeout)
    pending = list(edges)
    while pending:
        client.publish("zeromesh.invalidate.path", "/__warm-up__")
        time.sleep(0.05)
        pending = [e for e in pending if e.metric("zeromesh_edge_invalidations_total", kind="path") <= base[id(e)]]
        if time.monotonic() > deadline:
            raise AssertionError(f"edges {[e.port for e in pending]} never applied an invalidation")


def wait_metric_above(edge: EdgeProcess, name: str, value: float, timeout: float = 5.0, **labels: str) -> float:
    return wait_until(
        lambda: (v := edge.metric(name, **labels)) > value and v,
        timeout,
        interval=0.05,
        message=f"{name}{labels} above {value} on edge {edge.port}",
    )


class TCPProxy:
    """A loopback TCP relay that a test can cut (drop every connection, refuse new ones) and restore."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.cut = False
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._carried(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()

    def _carried(self, data: bytes) -> None:
        """Each chunk it relays, either way (a subclass may keep them)."""

    def cut_off(self) -> None:
        self.cut = True
        with self.lock:
            conns, self.connections = self.connections, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self.cut = False

    def close(self) -> None:
        self.closed = True
        self.cut_off()
        self.server.close()


__all__ = ["EdgeProcess", "HTTPResult", "TCPProxy", "fetch", "wait_metric_above", "warm_up_invalidations"]
