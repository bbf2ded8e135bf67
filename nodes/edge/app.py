# SPDX-License-Identifier: MIT
"""The edge's WSGI application: reserved paths, routes, the page cache, and the mesh behind them.

    app = make_app(client, routes, cache, time.monotonic, features=..., metrics=...)

Answers, in order: /healthz, /metrics and /events (reserved, before any
route); 404 or 405 when no route matches; the route's fallback (or 503) when
its feature is off; 413 for a body over the route's limit; 202 for a push;
for a request/reply route a cached page (X-Cache: HIT), else the service's
reply (MISS), else a stale copy (STALE), the fallback, or the error: 503
with Retry-After (no worker), 504 (deadline), 502 (remote error, with an
error id that is logged; the traceback stays in the log).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from zeromesh import errors
from zeromesh.nodes import names

from . import defaults, health, idempotency, traceparent, upstream
from .cache import CacheEntry, CacheKey, PageCache, cache_key
from .failures import accepted, error_id, failure, fallback_or, plain
from .mapping import (
    ENCODED_SLASH,
    BadReply,
    Response,
    cacheable_response,
    path_params,
    reply_to_response,
    request_headers,
    request_host,
    request_path,
    routing_path,
    status_line,
)
from .metrics import EdgeMetrics
from .routes import Route, RouteTable
from .sse import HEADERS as SSE_HEADERS, EventStreams

log = logging.getLogger("zeromesh.edge")

Headers = list[tuple[str, str]]
Result = tuple[str, str, Headers, Iterable[bytes]]  # metrics label, status line, headers, body

_NO_ROUTE = "-"  # the route label of requests that matched none


_TOPIC_PARAM = re.compile(r"\{(\w+)\*?\}")


class EdgeApp:
    def __init__(
        self,
        client: Any,
        routes: RouteTable,
        cache: PageCache,
        clock: Callable[[], float],
        features: Any,
        metrics: EdgeMetrics,
        streams: EventStreams | None,
        store: Any = None,
    ) -> None:
        self.client = client
        self.store = store  # the RedisStore, None without Redis (for /readyz)
        self.routes = routes
        self.cache = cache
        self.clock = clock
        self.features = features
        self.metrics = metrics
        self.streams = streams
        self.flights: dict[CacheKey, upstream.Flight] = {}
        self.reserved: dict[str, Callable[[dict], Result]] = {
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics,
            "/events": self._events,
        }
        assert set(self.reserved) == set(defaults.RESERVED_PATHS)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = self.clock()
        # Every response names its trace (errors and cache hits too), and the access log line does.
        trace = environ["zeromesh.trace"] = traceparent.trace_id(environ.get(traceparent.ENVIRON_KEY))
        try:
            label, status, headers, body = self._handle(environ)
        except Exception:
            eid = error_id()
            log.exception("error %s: %s %s", eid, environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            self.metrics.error("internal")
            label = _NO_ROUTE
            status, headers, body = plain(500, f"500 Internal Server Error\nerror id: {eid}\n")
        start_response(status, [*headers, (traceparent.RESPONSE_HEADER, trace)])
        self.metrics.observe(label, int(status[:3]), self.clock() - started)
        if environ.get("REQUEST_METHOD") == "HEAD":
            close = getattr(body, "close", None)
            if close is not None:
                close()
            return [b""]  # the GET's headers, Content-Length included, without its body
        return body

    # -- dispatch --------------------------------------------------------------

    def _handle(self, environ: dict) -> Result:
        special = self.reserved.get(environ.get("PATH_INFO", ""))
        if special is not None:
            return special(environ)
        method = environ["REQUEST_METHOD"]
        if method == "HEAD":
            method = "GET"  # answered as the GET (from the cache, or the service sees a GET), minus the body
        host = request_host(environ)
        path = request_path(environ)
        if ENCODED_SLASH in path:
            self.metrics.error("bad_request")
            return (_NO_ROUTE, *plain(400, "400 Bad Request: a path may not contain NUL (%00)\n"))
        route_path = routing_path(environ, path)
        match = self.routes.match(method, host, route_path)
        route = match.route
        if route is None:
            if match.allowed:
                self.metrics.error("method_not_allowed")
                return (
                    _NO_ROUTE,
                    *plain(405, "405 Method Not Allowed\n", [("Allow", ", ".join(sorted(match.allowed)))]),
                )
            self.metrics.error("not_found")
            return (_NO_ROUTE, *plain(404, "404 Not Found\n"))
        cacheable = route.cacheable and method == "GET"
        if route.feature is not None and not self.features.is_on(route.feature):
            self.metrics.error("feature_off")
            status, out, page = fallback_or(
                route, "feature_off", 503, "503 Service Unavailable\n", [("Retry-After", str(defaults.RETRY_AFTER_S))]
            )
            return route.name, status, self._page_headers(route, out, "MISS") if cacheable else out, page
        key = None
        stale = None
        if cacheable:
            key = cache_key(
                host, route_path, environ.get("QUERY_STRING", ""), [environ.get(k, "") for k in route.vary_environ]
            )
            entry, fresh = self.cache.lookup(key)
            if entry is not None and fresh:
                self.metrics.cache_result("hit")
                return route.name, entry.status, self._page_headers(route, entry.headers, "HIT"), [entry.body]
            stale = entry
        try:
            body = self._read_body(environ, route)
        except (OSError, ValueError) as exc:  # the browser left mid-body, or sent broken chunks
            self.metrics.error("bad_request")
            log.info("incomplete request body for %s from %s: %s", route.name, environ.get("REMOTE_ADDR"), exc)
            return (route.name, *plain(400, "400 Bad Request: incomplete body\n", [("Connection", "close")]))
        if body is None:
            self.metrics.error("too_large")
            return (route.name, *plain(413, "413 Content Too Large\n", [("Connection", "close")]))
        headers = request_headers(environ, route, path_params(match.params), path, host, method)
        if route.queue is not None:
            try:
                job_id = idempotency.job_id(environ.get(idempotency.ENVIRON_KEY))
            except idempotency.BadKey as exc:
                self.metrics.error("bad_request")
                return (route.name, *plain(400, f"400 Bad Request: {exc}\n"))
            return (route.name, *self._push(route, headers, body, job_id, environ["zeromesh.trace"]))
        if route.topic is not None:
            return (route.name, *self._publish(route, headers, body))
        return (route.name, *self._request(environ, route, key, headers, body, stale, environ["zeromesh.trace"]))

    def _page_headers(self, route: Route, headers: Headers, state: str) -> Headers:
        out = headers + [("X-Cache", state)]
        if route.vary_headers:
            out.append(("Vary", ", ".join(route.vary_headers)))
        return out

    def _read_body(self, environ: dict, route: Route) -> bytes | None:
        """The request body, or None when it is over the route's limit (then it is left unread)."""
        length_text = environ.get("CONTENT_LENGTH") or ""
        stream = environ.get("wsgi.input")
        if length_text:
            length = int(length_text)  # the server checked it is a number
            if length > route.max_body:
                self._abandon_input(environ)
                return None
            return stream.read(length) if length and stream is not None else b""
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() != "chunked" or stream is None:
            return b""
        body = stream.read(route.max_body + 1)
        if len(body) > route.max_body:
            self._abandon_input(environ)
            return None
        return body

    @staticmethod
    def _abandon_input(environ: dict) -> None:
        # Reading a body we refuse would let any client make us swallow gigabytes: the server is told
        # to skip it and close the connection after the 413.
        abandon = environ.get("zeromesh.abandon_input")
        if abandon is not None:
            abandon()

    # -- push --------------------------------------------------------------------

    def _push(
        self, route: Route, headers: dict, body: bytes, job_id: str | None, trace: str
    ) -> tuple[str, Headers, list[bytes]]:
        assert route.queue is not None
        try:
            job_id = self.client.push(
                route.queue, body, headers=headers, timeout=route.timeout_s, id=job_id, trace=trace
            )
        except errors.ZeromeshError as exc:
            return failure(self.metrics, route, upstream.classify(exc), exc)
        return accepted(job_id)

    def _publish(self, route: Route, headers: dict, body: bytes) -> tuple[str, Headers, list[bytes]]:
        assert route.topic is not None
        topic = route.topic
        if "{" in topic:
            params = headers.get(names.H_PARAMS) or {}
            topic = _TOPIC_PARAM.sub(lambda m: params.get(m.group(1), ""), topic)
            if not 1 <= len(topic.encode()) <= 255:
                return plain(400, "The topic must be 1 to 255 bytes.\n")
            if topic.startswith(names.INVALIDATE_PREFIX.split(".")[0] + "."):
                # Invalidations and feature switches are the mesh's own: a browser must not send them.
                return plain(403, "Topics under zeromesh. cannot be published from HTTP.\n")
        try:
            event_id = self.client.publish(topic, body, headers=headers, timeout=route.timeout_s)
        except errors.ZeromeshError as exc:
            return failure(self.metrics, route, upstream.classify(exc), exc)
        return accepted(event_id)

    # -- request/reply -------------------------------------------------------------

    def _request(
        self,
        environ: dict,
        route: Route,
        key: CacheKey | None,
        headers: dict,
        body: bytes,
        stale: CacheEntry | None,
        trace: str,
    ) -> tuple[str, Headers, list[bytes]]:
        sock = environ.get("zeromesh.socket")
        if key is None or not route.shares_misses:
            # Nobody can share this call: make it from this greenlet (its reply is cached if it says so).
            kind, value = upstream.call_watched(lambda: self._call(route, key, headers, body, trace), sock)
        else:
            flight = self.flights.get(key)
            if flight is None:
                # A shared flight carries the trace of the request that started it.
                flight = upstream.Flight(
                    lambda: self._call(route, key, headers, body, trace), on_done=self._landed(key)
                )
                self.flights[key] = flight
            watch = upstream.DisconnectWatch(sock) if sock is not None else None
            try:
                kind, value = flight.wait(watch)
            finally:
                if watch is not None:
                    watch.close()
        if kind == upstream.INTERNAL and isinstance(value, BadReply):
            kind = "bad_reply"
        if kind == upstream.OK:
            response: Response = value
            if key is not None:
                self.metrics.cache_result("miss")
                return response.status, self._page_headers(route, response.headers, "MISS"), [response.body]
            return response.status, response.headers, [response.body]
        if kind == upstream.CLIENT_GONE:
            self.metrics.error("client_gone")
            log.info("client left before %s answered: cancelled", route.service)
            # Nobody reads this; 499 is what the access log and metrics show (nginx's "client closed request").
            return "499 Client Closed Request", [("Content-Length", "0"), ("Connection", "close")], [b""]
        if stale is not None:
            self.metrics.cache_result("stale")
            self.metrics.error(kind)
            log.info("serving a stale %s (%s)", route.name, kind)
            return stale.status, self._page_headers(route, stale.headers, "STALE"), [stale.body]
        status, out, page = failure(self.metrics, route, kind, value)
        if key is not None:
            self.metrics.cache_result("miss")
            out = self._page_headers(route, out, "MISS")
        return status, out, page

    def _call(self, route: Route, key: CacheKey | None, headers: dict, body: bytes, trace: str) -> Response:
        """Runs in the flight's greenlet: the REQUEST, its reply mapped, and (if it may be) cached."""
        assert route.service is not None
        reply = self.client.request_full(route.service, body, timeout=route.timeout_s, headers=headers, trace=trace)
        response = reply_to_response(reply.headers, reply.body)
        if key is not None:
            ttl = route.cache_ttl_s if response.ttl is None else response.ttl
            if ttl > 0 and cacheable_response(response):
                self.cache.store(
                    key,
                    CacheEntry(response.status, response.headers, response.body, headers["http.path"], response.tags),
                    ttl,
                )
        return response

    def _landed(self, key: CacheKey) -> Callable[[upstream.Flight], None]:
        """What a shared flight does when it lands (or is cancelled): leave the table, if still in it."""

        def done(flight: upstream.Flight) -> None:
            if self.flights.get(key) is flight:
                del self.flights[key]

        return done

    # -- reserved paths --------------------------------------------------------------

    def _healthz(self, environ: dict) -> Result:
        return self._health("healthz", *health.liveness())

    def _readyz(self, environ: dict) -> Result:
        services = [r.service for r in self.routes.routes if r.service is not None]
        return self._health("readyz", *health.readiness(self.client, self.store, services))

    @staticmethod
    def _health(label: str, code: int, body: bytes) -> Result:
        return (
            label,
            status_line(code),
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")],
            [body],
        )

    def _metrics(self, environ: dict) -> Result:
        body = self.metrics.render()
        return (
            "metrics",
            status_line(200),
            [("Content-Type", self.metrics.content_type), ("Content-Length", str(len(body)))],
            [body],
        )

    def _events(self, environ: dict) -> Result:
        if self.streams is None or environ.get("REQUEST_METHOD") != "GET":
            return ("events", *plain(405 if self.streams else 404, "no event streams here\n"))
        return "events", status_line(200), list(SSE_HEADERS), self.streams.stream(environ)


def make_app(
    client: Any,
    routes: RouteTable,
    cache: PageCache,
    clock: Callable[[], float] = time.monotonic,
    *,
    features: Any = None,
    metrics: EdgeMetrics | None = None,
    streams: EventStreams | None = None,
    store: Any = None,
) -> EdgeApp:
    """The edge's WSGI app. `client` is a (green) zeromesh Client; `features` answers is_on(name)."""
    if client is None:
        raise TypeError("make_app needs a zeromesh Client")
    if features is None:
        from zeromesh.nodes.features import FeatureSwitches

        features = FeatureSwitches()
    metrics = metrics if metrics is not None else EdgeMetrics()
    metrics.track_cache(lambda: len(cache), lambda: cache.bytes)
    return EdgeApp(client, routes, cache, clock, features, metrics, streams, store)
