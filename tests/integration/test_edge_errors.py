# SPDX-License-Identifier: MIT
"""Every error the edge answers, over real sockets: 400, 404, 413, 502, 503, 504, and a browser that leaves."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from zeromesh.nodes.edge.defaults import LINGER_IDLE_S

from ..conftest import scaled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROUTES = """
[[route]]
name = "boom"
path = "/boom"
service = "boom"

[[route]]
name = "nobody"
path = "/nobody"
service = "nobody-serves-this"

[[route]]
name = "slow"
path = "/slow"
service = "slow"
timeout_s = 0.5

[[route]]
name = "upload"
path = "/upload"
method = "POST"
service = "size"
max_body = 1000

[[route]]
name = "wait"
path = "/wait"
service = "wait"
timeout_s = 20
"""


def raw_exchange(port: int, data: bytes, timeout: float = 5.0, half_close: bool = False) -> bytes:
    """Send raw bytes (then, with half_close, nothing more), read until the server closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(timeout)) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def test_malformed_http_gets_400_and_is_counted(broker, edge_factory):
    edge = edge_factory(ROUTES)
    answer = raw_exchange(edge.port, b"THIS IS NOT HTTP AT ALL\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer
    answer = raw_exchange(edge.port, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer
    answer = raw_exchange(edge.port, b"GET / HTTP/1.1\r\nHost: x\r\nnot a header line\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert edge.metric("zeromesh_edge_errors_total", kind="bad_request") == 3
    assert edge.metric("zeromesh_edge_requests_total", route="-", status="400") == 3
    assert "400 for malformed HTTP from 127.0.0.1:" in edge.log()
    # A body shorter than announced (the browser stopped sending): 400, not a 500 with a traceback.
    answer = raw_exchange(
        edge.port, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n0123456789", half_close=True
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert "Traceback" not in edge.log()


def test_body_over_the_limit_gets_413_without_being_read(broker, start_worker, edge_factory):
    start_worker(broker.endpoint, {"size": lambda job: str(len(job.body))})
    edge = edge_factory(ROUTES)
    assert edge.request("POST", "/upload", body=b"x" * 1000).text == "1000"
    # Announce 100 MB, send only the headers: the answer must come without the edge waiting for the body.
    started = time.monotonic()
    answer = raw_exchange(
        edge.port, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"y" * 5000
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"connection: close" in answer.lower()
    assert time.monotonic() - started < scaled(2)
    # Chunked, no length given: refused once it passes the limit.
    chunk = b"y" * 800
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))
    answer = raw_exchange(edge.port, b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert edge.metric("zeromesh_edge_errors_total", kind="too_large") == 2


def test_a_large_refused_body_still_lets_the_client_read_its_413(broker, edge_factory):
    # urllib sends the whole body before it reads the answer: if the edge closed the connection on an
    # unread body, the kernel would reset it and urllib would report "connection reset", not 413.
    edge = edge_factory(ROUTES)
    request = urllib.request.Request(
        f"http://127.0.0.1:{edge.port}/upload",
        data=b"z" * (64 << 20),
        method="POST",
        headers={"Content-Type": "application/octet-stream"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=scaled(20))
    assert refused.value.code == 413
    assert refused.value.read() == b"413 Content Too Large\n"
    assert edge.metric("zeromesh_edge_errors_total", kind="too_large") == 1


def test_discarding_a_refused_body_is_bounded(broker, edge_factory):
    # A client that keeps a refused upload trickling is cut off after the idle bound, not served forever.
    edge = edge_factory(ROUTES)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=scaled(5)) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"y" * 5000)
        answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        started = time.monotonic()
        assert s.recv(100) == b""  # the response is complete: the edge half-closed after it
        time.sleep(LINGER_IDLE_S + 0.5)  # silent for longer than the idle bound: the edge stops reading, closes
        with pytest.raises(OSError):
            for _ in range(100):
                s.sendall(b"y" * 65536)
                time.sleep(0.01)
        assert time.monotonic() - started < scaled(LINGER_IDLE_S + 2)


def test_remote_error_is_502_with_an_error_id_and_no_traceback(broker, start_worker, edge_factory):
    def boom(job):
        raise KeyError("secret-internal-detail")

    start_worker(broker.endpoint, {"boom": boom})
    edge = edge_factory(ROUTES)
    r = edge.get("/boom")
    assert r.status == 502
    assert "secret-internal-detail" not in r.text and "Traceback" not in r.text and "KeyError" not in r.text
    error_id = r.headers["x-error-id"]
    assert f"error id: {error_id}" in r.text
    wait_until(lambda: f"error {error_id}" in edge.log(), 5, message="the error id in the edge's log")
    assert edge.metric("zeromesh_edge_errors_total", kind="remote") == 1


def test_no_worker_is_503_at_once_with_retry_after(broker, edge_factory):
    edge = edge_factory(ROUTES)
    started = time.monotonic()
    r = edge.get("/nobody")
    assert r.status == 503 and r.headers["retry-after"].isdigit()
    assert time.monotonic() - started < scaled(0.5)
    assert edge.metric("zeromesh_edge_errors_total", kind="no_workers") == 1


def test_deadline_passed_is_504(broker, start_worker, edge_factory):
    def slow(job):
        job.cancelled.wait(5)
        return b"late"

    start_worker(broker.endpoint, {"slow": slow})
    edge = edge_factory(ROUTES)
    started = time.monotonic()
    r = edge.get("/slow")
    assert r.status == 504, r
    assert scaled(0.4) < time.monotonic() - started < scaled(2.5)
    assert edge.metric("zeromesh_edge_errors_total", kind="timeout") == 1


def test_browser_that_hangs_up_cancels_the_request_at_the_worker(broker, start_worker, edge_factory):
    started, cancelled = threading.Event(), threading.Event()

    def wait(job):
        started.set()
        if job.cancelled.wait(15):
            cancelled.set()
        return b"too late"

    start_worker(broker.endpoint, {"wait": wait})
    edge = edge_factory(ROUTES)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as s:
        s.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        assert started.wait(scaled(5)), "the request never reached the worker"
    t0 = time.monotonic()
    assert cancelled.wait(scaled(5)), "the worker was never told"
    assert time.monotonic() - t0 < scaled(2)  # at once, not at the 20 s deadline
    wait_until(
        lambda: edge.metric("zeromesh_edge_errors_total", kind="client_gone") == 1, 5, message="client_gone counted"
    )
