# SPDX-License-Identifier: MIT
"""The console's WSGI app: pages rendered from the poller's snapshot, the SSE stream, static
files, and POST /act for actions (guarded by auth.py's rules, in this order: password 401,
same origin 403, CSRF token 403, then the form 400)."""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment

from . import actions, auth, pages
from .poller import Poller
from .sse import Streams

log = logging.getLogger("zeromesh.console")

MAX_FORM = 64 * 1024
"""The largest form body taken (a replay of many selected ids fits)."""

STATIC = ("console.js", "console.css")

SOCKET_KEY = "zeromesh.console.socket"
"""The environ key of the request's connection (set by server.Handler), for SSE to notice a hang-up."""


@dataclass
class Settings:
    password: str
    secret: bytes
    reads_need_password: bool  # bound to a non-loopback address
    switches: Any = None  # flip(client, name, on) and listing(): zeromesh.nodes.feature_switch.Switchboard


class HttpError(Exception):
    def __init__(self, status: str, text: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.headers = status, text, headers or []


class ConsoleApp:
    def __init__(self, poller: Poller, jinja: Environment, settings: Settings, streams: Streams) -> None:
        self.poller, self.jinja, self.settings, self.streams = poller, jinja, settings, streams
        self.static = {name: resources.files(__package__).joinpath("static", name).read_bytes() for name in STATIC}

    def __call__(self, environ: dict, start_response: Any) -> Any:
        try:
            return self._route(environ, start_response)
        except HttpError as exc:
            return self._text(start_response, exc.status, exc.text, exc.headers, environ)

    def _route(self, environ: dict, start_response: Any) -> Any:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/"
        if path.startswith("/static/"):
            return self._static(start_response, path[len("/static/") :])
        if method == "POST" and path == "/act":
            self._guard_post(environ)
            return self._act(environ, start_response)
        if method not in ("GET", "HEAD"):
            raise HttpError("405 Method Not Allowed", f"{method} {path}: only GET here (POST /act for actions)")
        if self.settings.reads_need_password and not auth.basic_ok(
            environ.get("HTTP_AUTHORIZATION"), self.settings.password
        ):
            raise self._unauthorized()
        if path == "/events":
            return self._events(environ, start_response)
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), max_num_fields=20).items()}
        found = pages.find(path)
        if found is None:
            raise HttpError("404 Not Found", f"no page at {path}")
        render, arg = found
        try:
            template, context = render(self.poller, self.settings, arg, query)
        except pages.NotFound as exc:
            return self._page(start_response, "404 Not Found", "missing.html", {"message": str(exc)}, path)
        return self._page(start_response, "200 OK", template, context, path)

    # -- POST ------------------------------------------------------------

    def _unauthorized(self) -> HttpError:
        return HttpError(
            "401 Unauthorized",
            "the console needs its admin password for this (HTTP Basic auth, user admin)",
            [("WWW-Authenticate", 'Basic realm="zeromesh console", charset="UTF-8"')],
        )

    def _guard_post(self, environ: dict) -> None:
        if not auth.basic_ok(environ.get("HTTP_AUTHORIZATION"), self.settings.password):
            raise self._unauthorized()
        host = environ.get("HTTP_HOST") or ""
        if not auth.same_origin(
            environ.get("HTTP_ORIGIN"), environ.get("HTTP_REFERER"), environ.get("wsgi.url_scheme", "http"), host
        ):
            raise HttpError("403 Forbidden", "refused: the request did not come from a page of this console (Origin)")

    def _act(self, environ: dict, start_response: Any) -> Any:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HttpError("400 Bad Request", "bad Content-Length") from None
        if length > MAX_FORM:
            raise HttpError("413 Content Too Large", f"forms are limited to {MAX_FORM} bytes")
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            form = parse_qs(raw.decode("utf-8"), strict_parsing=bool(raw), max_num_fields=1000)
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError("400 Bad Request", f"malformed form: {exc}") from None
        token = form.get("csrf", [None])[0]
        if not auth.token_ok(self.settings.secret, token):
            raise HttpError("403 Forbidden", "refused: missing or bad CSRF token (reload the page and try again)")
        try:
            outcome = actions.run(self.poller, self.settings.switches, form)
        except actions.BadForm as exc:
            raise HttpError("400 Bad Request", f"malformed form: {exc}") from None
        log.info("console action %s: %s", form.get("action"), outcome.message)
        if outcome.ok:
            self.poller.poll_once()  # the next page shows the change at once
        status = "200 OK" if outcome.ok else "502 Bad Gateway"
        return self._page(start_response, status, "result.html", {"outcome": outcome}, "/act")

    # -- answers ---------------------------------------------------------

    def _events(self, environ: dict, start_response: Any) -> Any:
        if not self.streams.take():
            raise HttpError(
                "503 Service Unavailable", f"too many live streams open (at most {self.streams.max_clients})"
            )
        start_response(
            "200 OK",
            [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")],
        )
        return self.streams.stream(environ.get(SOCKET_KEY))

    def _static(self, start_response: Any, name: str) -> list[bytes]:
        body = self.static.get(name)
        if body is None:
            raise HttpError("404 Not Found", f"no static file {name}")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        start_response("200 OK", [("Content-Type", f"{ctype}; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    def _page(self, start_response: Any, status: str, template: str, context: dict, path: str) -> list[bytes]:
        snap = self.poller.snapshot
        body = (
            self.jinja.get_template(template)
            .render(
                snap=snap,
                path=path,
                csrf=auth.make_token(self.settings.secret),
                nav=pages.NAV,
                quote=quote,
                **context,
            )
            .encode("utf-8")
        )
        start_response(
            status,
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("X-Frame-Options", "DENY"),
                ("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:"),
            ],
        )
        return [body]

    def _text(self, start_response: Any, status: str, text: str, headers: list, environ: dict) -> list[bytes]:
        body = (text + "\n").encode("utf-8")
        start_response(
            status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *headers]
        )
        return [body]
