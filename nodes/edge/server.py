# SPDX-License-Identifier: MIT
"""gevent's pywsgi around the edge app: the handler the edge needs, the listener, and a clean stop."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from typing import Any

import gevent
from gevent import pywsgi

from . import defaults
from .headers import read_headers
from .metrics import EdgeMetrics

log = logging.getLogger("zeromesh.edge.server")
access_log = logging.getLogger("zeromesh.edge.access")

YIELD_EVERY = 16
"""Keep-alive requests served on one connection before it lets the others have a turn."""

JOIN_MAX = 256 * 1024
"""Bodies up to this size go out in the same send() as the response headers."""

_lingering = 0  # connections discarding a refused body now (see EdgeHandler._discard_refused_body)

_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class EdgeHandler(pywsgi.WSGIHandler):
    """pywsgi's handler, plus what the edge needs from the connection.

    * TCP_NODELAY: pywsgi writes the headers and the body in two sends; with
      Nagle's algorithm on, the second waits for the browser's delayed ACK and
      every keep-alive response stalls about 40 ms.
    * Malformed requests: pywsgi answers 400 itself; here they are counted and
      the peer logged.
    * The app gets the socket (to notice a browser that hangs up while its page
      is rendered), the parsed header list, and a way to refuse a body unread.
    """

    metrics: EdgeMetrics | None = None  # set on a subclass by make_server
    access = False  # write an access log line per request (set on a subclass by make_server)
    provided_date: bytes | None  # pywsgi's: the Date header the app gave, if any (gevent has no type hints)

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
        with contextlib.suppress(OSError):  # not TCP (a unix socket)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(sock, address, server, rfile)

    _served = 0
    _linger = False  # set when the app refused a body unread: discard it after the answer, then close

    def handle_one_request(self) -> Any:
        result = super().handle_one_request()
        if self._linger:
            self._linger = False
            self._discard_refused_body()
            return None  # the connection closes
        if result is True:
            self._served += 1
            if self._served % YIELD_EVERY == 0:
                # A keep-alive client whose next request is already buffered is served again at once,
                # without yielding: a few busy connections would starve the others. Take turns, now
                # and then: yielding after every request costs a loop iteration each (about a third of
                # the throughput); every 16th keeps p99 at 50 connections near the bare server's.
                gevent.sleep(0)
        return result

    def _write_with_headers(self, data: bytes) -> None:
        # pywsgi sends the headers and the first body chunk in two send() calls. With TCP_NODELAY
        # that is two segments, and two wake-ups of the browser, per response: those sends were the
        # costliest calls of a request. One send for both, unless the body is chunked (an event
        # stream) or big enough that copying it costs more than the extra call.
        self.headers_sent = True
        self.finalize_headers()  # decides response_use_chunked
        # status and headers are latin-1 bytes already (start_response encoded them)
        towrite = bytearray(b"HTTP/1.1 ")
        towrite += self.status
        towrite += b"\r\n"
        for header, value in self.response_headers:
            towrite += header
            towrite += b": "
            towrite += value
            towrite += b"\r\n"
        towrite += b"\r\n"
        if self.response_use_chunked or len(data) > JOIN_MAX:
            self._sendall(towrite)
            self._write(data)
            return
        towrite += data
        self._send_response(towrite)

    def _send_response(self, data: bytearray) -> None:
        # pywsgi's _sendall goes through gevent's sendall, which asks the kernel for SO_SNDBUF on every
        # call (to size its chunks). A response that fits the socket buffer leaves in one send().
        try:
            sent = self.socket.send(data)
        except OSError:
            sent = 0  # let _sendall report it the way pywsgi does
        self.response_length += sent
        if sent < len(data):
            self._sendall(memoryview(data)[sent:])  # the rest, waiting for room as it must

    def MessageClass(self, rfile: Any, *args: Any) -> Any:  # noqa: N802 - pywsgi's name
        return read_headers(rfile)

    def log_request(self) -> None:
        # pywsgi formats the access line (a datetime and a dozen fields) even when it is thrown away.
        if self.access:
            super().log_request()

    def format_request(self) -> str:
        # pywsgi's access line, then the request's trace id (X-Zeromesh-Trace), to find it in `zeromesh trace`.
        trace = (getattr(self, "environ", None) or {}).get("zeromesh.trace", "-")
        return f"{super().format_request()} trace={trace}"

    def finalize_headers(self) -> None:
        # The Date header, formatted once a second rather than once a response.
        if self.provided_date is None:
            self.provided_date = _http_date()
            self.response_headers.append((b"Date", self.provided_date))
        super().finalize_headers()

    def get_environ(self) -> dict:
        env = super().get_environ()
        env["zeromesh.socket"] = self.socket
        env["zeromesh.headers"] = self.headers
        env["zeromesh.abandon_input"] = self._abandon_input
        env["zeromesh.raw_path"] = self.path.partition("?")[0]  # PATH_INFO is decoded: %2F and / look alike
        return env

    def _abandon_input(self) -> None:
        # pywsgi reads out whatever body is left after the app returns (to keep the connection usable);
        # for a body we refused that must not happen unbounded: after the answer the connection is
        # drained within bounds (_discard_refused_body), then closed.
        wsgi_input = self.wsgi_input
        wsgi_input.content_length = wsgi_input.position
        wsgi_input.chunked_input = False
        self.close_connection = True
        self._linger = True

    def _discard_refused_body(self) -> None:
        """Lingering close, as nginx does it: the answer (a 413) has been sent, but the client may still be
        sending the body; closing now, with its bytes unread, makes the kernel reset the connection, and
        most clients then report the reset instead of the answer. So: half-close (the answer is complete),
        read and drop what comes until the client is done, or a bound is reached: the time, an idle gap,
        the bytes, and the number of connections doing this at once."""
        global _lingering
        if _lingering >= defaults.LINGER_MAX_CONNECTIONS:
            log.info(
                "413 to %s: %d connections already discarding bodies; closing this one at once",
                _peer(self.client_address),
                _lingering,
            )
            return
        _lingering += 1
        sock = self.socket
        started = time.monotonic()
        deadline = started + defaults.LINGER_TIME_S
        discarded, buffer, why = 0, bytearray(65536), "the client finished"
        try:
            sock.shutdown(socket.SHUT_WR)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    why = f"{defaults.LINGER_TIME_S:g} s passed"
                    break
                if discarded >= defaults.LINGER_MAX_BYTES:
                    why = f"{discarded} bytes discarded"
                    break
                sock.settimeout(min(defaults.LINGER_IDLE_S, left))
                n = sock.recv_into(buffer)
                if not n:
                    break
                discarded += n
        except TimeoutError:
            why = f"the client sent nothing for {defaults.LINGER_IDLE_S:g} s"
        except OSError as exc:
            why = f"the connection failed ({exc.strerror or exc})"
        finally:
            _lingering -= 1
        log.debug(
            "413 to %s: discarded %d body bytes in %.2f s, then closed: %s",
            _peer(self.client_address),
            discarded,
            time.monotonic() - started,
            why,
        )

    def _handle_client_error(self, ex: BaseException) -> Any:
        # pywsgi's hook for bad client input (it answers 400 and closes); replaced rather than extended
        # so each bad request is logged once, with its peer.
        if self.metrics is not None:
            self.metrics.error("bad_request")
            self.metrics.observe("-", 400, 0.0)
        expected = isinstance(ex, (ValueError, IOError))
        log.warning(
            "400 for malformed HTTP from %s: %s",
            _peer(self.client_address),
            str(ex)[:200] or type(ex).__name__,
            exc_info=None if expected else ex,
        )
        return "400", _BAD_REQUEST


_date: list[Any] = [0, b""]  # [the second, its Date header]: one mutable pair, read per response


def _http_date() -> bytes:
    now = int(time.time())
    if now != _date[0]:
        _date[0], _date[1] = now, pywsgi.format_date_time(now)
    return _date[1]


def _peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


def listen(address: str, reuse_port: bool = False, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on "host:port" ("[::1]:8080" for IPv6). reuse_port: one of several processes."""
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        # The bare "[Errno 98] Address already in use" does not say which address: the operator needs it.
        raise OSError(exc.errno, f"cannot listen on {address}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {address!r} must be HOST:PORT, e.g. 127.0.0.1:8080")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def make_server(listener: Any, app: Any, metrics: EdgeMetrics | None, access: bool = False) -> pywsgi.WSGIServer:
    handler = type("Handler", (EdgeHandler,), {"metrics": metrics, "access": access})
    return pywsgi.WSGIServer(
        listener,
        app,
        handler_class=handler,
        log=pywsgi.LoggingLogAdapter(access_log, logging.INFO) if access else None,
        error_log=pywsgi.LoggingLogAdapter(log, logging.WARNING),
    )
