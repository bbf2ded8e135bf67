# SPDX-License-Identifier: MIT
"""HTTP request -> message headers, and REPLY -> HTTP response (protocol/SPEC.md, "HTTP mapping").

The HTTP body travels as the message body, untouched; everything else goes
into the REQUEST/PUSH application `headers` under the `http.*` and `render.*`
keys. A REPLY may set `http.status`, `http.headers`, `cache.tags` and
`cache.ttl`. Pure functions: no sockets, no gevent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from zeromesh.nodes import names

from .routes import Route

DEFAULT_CONTENT_TYPE = "text/html; charset=utf-8"

# Hop-by-hop headers concern one connection, not the message (RFC 9110 7.6.1): not passed on either way.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
)
# From a service, framing and cache state are the edge's business too.
_NOT_FORWARDED = _HOP_BY_HOP | {"content-length", "x-cache"}

_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


class BadReply(ValueError):
    """A service's REPLY headers cannot become an HTTP response."""


def status_line(code: int) -> str:
    return _STATUS_LINES.get(code) or f"{code} Unknown"


def request_host(environ: Mapping[str, Any]) -> str:
    """The Host header without its port, lower case ("" when absent)."""
    host = environ.get("HTTP_HOST", "")
    if host.startswith("["):  # [::1]:8080
        return host[: host.find("]") + 1].lower()
    return host.partition(":")[0].lower()


def request_path(environ: Mapping[str, Any]) -> str:
    """PATH_INFO as text. WSGI servers hand it over percent-decoded as latin-1: re-read the bytes as UTF-8."""
    path = environ.get("PATH_INFO", "") or "/"
    try:
        return path.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return path.encode("latin-1", "replace").decode("utf-8", "replace")


ENCODED_SLASH = "\0"
"""Stands for a %2F in the path the routes are matched against: data inside a segment, never a separator.
(NUL itself is refused in paths, so it cannot be confused with one.)"""


def routing_path(environ: Mapping[str, Any], path: str) -> str:
    """The path routes are matched against: `path` (decoded), except that a slash which arrived as %2F
    is ENCODED_SLASH, so /cards/a%2Fb is one segment, "a/b", and not the path /cards/a/b. Without the
    raw path (a WSGI server other than the edge's) it is `path`."""
    raw = environ.get("zeromesh.raw_path")
    if raw is None or "%2" not in raw.upper():
        return path
    return "/".join(unquote(segment, errors="replace").replace("/", ENCODED_SLASH) for segment in raw.split("/"))


def path_params(params: Mapping[str, str]) -> dict[str, str]:
    """Path parameters as the service sees them: an encoded slash is a slash again."""
    return {name: value.replace(ENCODED_SLASH, "/") for name, value in params.items()}


def http_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """Request headers by lower-cased name, repeats joined with ", " (cookies with "; "), without the
    hop-by-hop ones (and those the Connection header names).

    The edge's handler puts the parsed header list in environ["zeromesh.headers"];
    without it (another WSGI server) they are rebuilt from the HTTP_* keys.
    """
    raw = environ.get("zeromesh.headers")
    out: dict[str, str] = {}
    if raw is not None:
        for name, value in raw.items():
            name = name.lower()
            if name in out:
                out[name] += ("; " if name == "cookie" else ", ") + value
            else:
                out[name] = value
    else:
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                out[key[5:].lower().replace("_", "-")] = value
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                out[key.lower().replace("_", "-")] = environ[key]
    drop = _HOP_BY_HOP | {t.strip().lower() for t in out.get("connection", "").split(",")}
    for name in drop & out.keys():
        del out[name]
    return out


def request_headers(
    environ: Mapping[str, Any], route: Route, params: Mapping[str, str], path: str, host: str, method: str | None = None
) -> dict[str, Any]:
    """The application headers of the REQUEST or PUSH for this HTTP request (`method`: as the service
    should see it, when not the request's own: a HEAD is sent as GET)."""
    headers: dict[str, Any] = {
        names.H_METHOD: method or environ.get("REQUEST_METHOD", "GET"),
        names.H_PATH: path,
        names.H_QUERY: environ.get("QUERY_STRING", ""),
        names.H_HEADERS: http_headers(environ),
        names.H_HOST: host,
        names.H_CLIENT: f"{environ.get('REMOTE_ADDR', '')}:{environ.get('REMOTE_PORT', '')}",
        names.H_ROUTE: route.name,
        names.H_PARAMS: dict(params),
    }
    if route.template is not None:
        headers[names.H_TEMPLATE] = route.template
    if route.site is not None:
        headers[names.H_SITE] = route.site
    return headers


@dataclass(frozen=True)
class Response:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    tags: frozenset[str] = frozenset()
    ttl: float | None = None  # the reply's cache.ttl, when it gave one

    @property
    def code(self) -> int:
        return int(self.status[:3])


def reply_to_response(reply_headers: Mapping[str, Any], body: bytes) -> Response:
    """The HTTP response a REPLY stands for; raises BadReply when its headers are unusable."""
    status = reply_headers.get(names.H_STATUS, 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise BadReply(f"{names.H_STATUS} must be an int from 200 to 599, got {status!r}")
    out: list[tuple[str, str]] = []
    content_type = DEFAULT_CONTENT_TYPE
    given = reply_headers.get(names.H_HEADERS) or {}
    if not isinstance(given, Mapping):
        raise BadReply(f"{names.H_HEADERS} must be a map, got {type(given).__name__}")
    for name, value in given.items():
        if not isinstance(name, str) or not name or any(c in name for c in ":\r\n \t"):
            raise BadReply(f"bad response header name {name!r}")
        lower = name.lower()
        if lower in _NOT_FORWARDED:
            continue
        values = value if isinstance(value, list) else [value]
        for v in values:
            text = _header_text(name, v)
            if "\r" in text or "\n" in text:
                raise BadReply(f"response header {name} has a line break")
            try:
                text.encode("latin-1")
            except UnicodeEncodeError:
                raise BadReply(f"response header {name} is not latin-1") from None
            if lower == "content-type":
                content_type = text
            else:
                out.append((name, text))
    out.insert(0, ("Content-Type", content_type))
    out.append(("Content-Length", str(len(body))))
    tags = reply_headers.get(names.H_CACHE_TAGS) or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadReply(f"{names.H_CACHE_TAGS} must be a list of strings")
    ttl = reply_headers.get(names.H_CACHE_TTL)
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0):
        raise BadReply(f"{names.H_CACHE_TTL} must be a number of seconds, 0 or more")
    return Response(status_line(status), out, body, frozenset(tags), None if ttl is None else float(ttl))


def _header_text(name: str, value: Any) -> str:
    """A response header's value: text as it is, a number as its decimal text (3 -> "3", 1.5 -> "1.5").
    A list of these repeats the header (the caller's loop); anything else is the service's mistake."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise BadReply(f"response header {name} must be a string, a number or a list of them, got {type(value).__name__}")


def cacheable_response(response: Response) -> bool:
    """Only plain successes are cached, and never what is marked private or carries a cookie."""
    if response.code != 200:
        return False
    for name, value in response.headers:
        lower = name.lower()
        if lower == "set-cookie":
            return False
        if lower == "cache-control" and any(d in value.lower() for d in ("private", "no-store")):
            return False
    return True
