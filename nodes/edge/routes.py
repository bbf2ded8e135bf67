# SPDX-License-Identifier: MIT
"""The route table: which HTTP requests go to which service or queue, read from TOML.

    [[route]]
    name = "card"                 # unique; sent as http.route, used in metrics
    method = "GET"                # or a list; default "GET"
    path = "/cards/{id}"          # {name} is one path segment, {name*} the rest of the path
    host = "*.example.com"        # optional: exact host, or any subdomain of example.com
    service = "render"            # request/reply; or queue = "send" (push: 202 {"id": job id});
                                  # or topic = "news.x" (publish: 202 {"id": event id})
    template = "card.html"        # optional, sent as render.template
    site = "ecards"               # optional, sent as render.site
    timeout_s = 2.0               # the message deadline (default 5)
    cache_ttl_s = 30              # GET only; 0 (default) = cached only when a reply's cache.ttl says so
    vary_headers = ["accept-language"]   # request headers that are part of the cache key
    max_body = 65536              # bytes (default 1 MiB); a larger body gets 413
    fallback = "<p>Back soon.</p>"       # or {body|file, status, content_type}
    feature = "cards"             # a feature switch: off -> the fallback (or 503)

Routes are tried in file order and the first whose host, path and method match
wins. A path that matches only with another method gives 405.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from . import defaults

_KEYS = {
    "name",
    "method",
    "path",
    "host",
    "service",
    "queue",
    "topic",
    "template",
    "site",
    "timeout_s",
    "cache_ttl_s",
    "vary_headers",
    "max_body",
    "fallback",
    "feature",
}
_FALLBACK_KEYS = {"body", "file", "status", "content_type"}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token: methods and header names
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\*?)\}")
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_NAME_MAX = 255  # service, queue and feature names travel in 1..255-byte header fields


class RouteError(ValueError):
    """The route table is not valid; the message names the file, the route and the field."""


@dataclass(frozen=True)
class Fallback:
    body: bytes
    status: int = 200
    content_type: str = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Route:
    name: str
    methods: frozenset[str]
    path: str
    service: str | None = None
    queue: str | None = None
    topic: str | None = None
    host: str | None = None
    template: str | None = None
    site: str | None = None
    timeout_s: float = defaults.TIMEOUT_S
    cache_ttl_s: float = 0.0
    vary_headers: tuple[str, ...] = ()
    max_body: int = defaults.MAX_BODY
    fallback: Fallback | None = None
    feature: str | None = None
    regex: re.Pattern[str] = field(default=re.compile(""), compare=False, repr=False)

    @cached_property
    def vary_environ(self) -> tuple[str, ...]:
        """The WSGI environ keys of the vary headers."""
        return tuple(environ_key(h) for h in self.vary_headers)

    @property
    def cacheable(self) -> bool:
        """Its GETs may be cached: for cache_ttl_s, or for the cache.ttl of a reply (even when cache_ttl_s is 0)."""
        return self.service is not None and "GET" in self.methods

    @property
    def shares_misses(self) -> bool:
        """Concurrent misses of one page share one REQUEST. Only where the operator asked for a cache: on
        a route left at 0 two browsers' pages may differ (cookies), so each asks for its own."""
        return self.cache_ttl_s > 0 and self.cacheable

    def matches_host(self, host: str) -> bool:
        if self.host is None:
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host


@dataclass(frozen=True)
class Match:
    """A route and its path parameters; or route None and the methods the path allows (empty: 404)."""

    route: Route | None
    params: dict[str, str]
    allowed: frozenset[str] = frozenset()


class RouteTable:
    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self.routes = list(routes)

    def __len__(self) -> int:
        return len(self.routes)

    def match(self, method: str, host: str, path: str) -> Match:
        allowed: set[str] = set()
        for route in self.routes:
            m = route.regex.fullmatch(path)
            if m is None or not route.matches_host(host):
                continue
            if method in route.methods:
                return Match(route, m.groupdict())
            allowed |= route.methods
        return Match(None, {}, frozenset(allowed))


def environ_key(header: str) -> str:
    """The WSGI environ key of a request header ("accept-language" -> "HTTP_ACCEPT_LANGUAGE")."""
    key = header.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


def compile_path(pattern: str) -> re.Pattern[str]:
    parts, pos, seen = [], 0, set()
    literals = []
    for m in _PARAM.finditer(pattern):
        literals.append(pattern[pos : m.start()])
        parts.append(re.escape(literals[-1]))
        name, rest = m.group(1), m.group(2)
        if name in seen:
            raise ValueError(f"parameter {{{name}}} appears twice")
        seen.add(name)
        parts.append(f"(?P<{name}>.+)" if rest else f"(?P<{name}>[^/]+)")
        pos = m.end()
    literals.append(pattern[pos:])
    parts.append(re.escape(literals[-1]))
    if any("{" in text or "}" in text for text in literals):
        raise ValueError("braces must enclose a parameter name, as in /cards/{id} or /static/{file*}")
    return re.compile("".join(parts))


def load_routes(path: str | Path) -> RouteTable:
    """Read and check a route table; raises RouteError naming what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RouteError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RouteError(f"{path}: not valid TOML: {exc}") from None
    return parse_routes(data, str(path), base_dir=path.parent)


def parse_routes(data: dict[str, Any], source: str = "routes", base_dir: Path | None = None) -> RouteTable:
    extra = set(data) - {"route"}
    if extra:
        raise RouteError(f"{source}: unknown top-level key(s) {', '.join(sorted(extra))}; routes are [[route]] tables")
    raw = data.get("route", [])
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise RouteError(f"{source}: 'route' must be an array of tables: write each as [[route]]")
    routes, names = [], set()
    for index, entry in enumerate(raw, 1):
        label = f"{source}: route #{index}" + (f" ({entry['name']!r})" if isinstance(entry.get("name"), str) else "")
        try:
            route = _parse_route(entry, base_dir)
        except (ValueError, TypeError) as exc:
            raise RouteError(f"{label}: {exc}") from None
        if route.name in names:
            raise RouteError(f"{label}: the name {route.name!r} is used by an earlier route")
        names.add(route.name)
        routes.append(route)
    return RouteTable(routes)


def _parse_route(entry: dict[str, Any], base_dir: Path | None) -> Route:
    unknown = set(entry) - _KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_KEYS))})")
    name = _str(entry, "name", required=True)
    methods = _methods(entry.get("method", "GET"))
    path = _str(entry, "path", required=True)
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', got {path!r}")
    try:
        regex = compile_path(path)
    except (ValueError, re.error) as exc:
        raise ValueError(f"path {path!r}: {exc}") from None
    service, queue, topic = _str(entry, "service"), _str(entry, "queue"), _str(entry, "topic")
    if sum(v is not None for v in (service, queue, topic)) != 1:
        raise ValueError("give exactly one of service (request/reply), queue (push) or topic (publish)")
    for key, value in (("service", service), ("queue", queue), ("topic", topic), ("feature", _str(entry, "feature"))):
        if value is not None and not 1 <= len(value.encode()) <= _NAME_MAX:
            raise ValueError(f"{key} must be 1..{_NAME_MAX} bytes")
    if topic is not None:  # a topic template may use the path's parameters, and only those
        wanted = set(re.findall(r"\{(\w+)\*?\}", topic))
        missing = wanted - set(re.findall(r"\{(\w+)\*?\}", path))
        if missing:
            raise ValueError(f"topic {topic!r} names {sorted(missing)}, which the path does not have")
    host = _str(entry, "host")
    if host is not None:
        host = host.lower()
        if not _HOST.match(host):
            raise ValueError(f"host {host!r} must be a host name (www.example.com) or *.example.com")
    timeout_s = _number(entry, "timeout_s", defaults.TIMEOUT_S)
    if timeout_s <= 0 or timeout_s > 3600:
        raise ValueError("timeout_s must be more than 0 and at most 3600")
    cache_ttl_s = _number(entry, "cache_ttl_s", 0.0)
    if cache_ttl_s < 0:
        raise ValueError("cache_ttl_s must be 0 (no cache) or more")
    if cache_ttl_s and (service is None or "GET" not in methods):
        raise ValueError("cache_ttl_s applies to GET routes to a service only")
    vary = entry.get("vary_headers", [])
    if not isinstance(vary, list) or not all(isinstance(h, str) and _TOKEN.match(h) for h in vary):
        raise ValueError("vary_headers must be a list of header names")
    max_body = entry.get("max_body", defaults.MAX_BODY)
    if not isinstance(max_body, int) or isinstance(max_body, bool) or max_body < 0:
        raise ValueError("max_body must be a whole number of bytes, 0 or more")
    return Route(
        name=name,
        methods=methods,
        path=path,
        service=service,
        queue=queue,
        topic=topic,
        host=host,
        template=_str(entry, "template"),
        site=_str(entry, "site"),
        timeout_s=float(timeout_s),
        cache_ttl_s=float(cache_ttl_s),
        vary_headers=tuple(h.lower() for h in vary),
        max_body=max_body,
        fallback=_fallback(entry.get("fallback"), base_dir),
        feature=_str(entry, "feature"),
        regex=regex,
    )


def _str(entry: dict[str, Any], key: str, required: bool = False) -> Any:
    value = entry.get(key)
    if value is None:
        if required:
            raise ValueError(f"{key} is required")
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _number(entry: dict[str, Any], key: str, default: float) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must be a number of seconds, got {value!r}")
    return float(value)


def _methods(value: Any) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError("method must be a string or a non-empty list of strings")
    for m in items:
        if not isinstance(m, str) or not _TOKEN.match(m):
            raise ValueError(f"method {m!r} is not an HTTP method")
    return frozenset(m.upper() for m in items)


def _fallback(value: Any, base_dir: Path | None) -> Fallback | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Fallback(value.encode("utf-8"))
    if not isinstance(value, dict):
        raise ValueError("fallback must be a string or a table {body|file, status, content_type}")
    unknown = set(value) - _FALLBACK_KEYS
    if unknown:
        raise ValueError(f"fallback: unknown key(s) {', '.join(sorted(unknown))}")
    if ("body" in value) == ("file" in value):
        raise ValueError("fallback needs exactly one of body or file")
    if "file" in value:
        file = Path(value["file"])
        if not file.is_absolute() and base_dir is not None:
            file = base_dir / file
        try:
            body = file.read_bytes()
        except OSError as exc:
            raise ValueError(f"fallback file {str(file)!r}: {exc.strerror or exc}") from None
    elif isinstance(value["body"], str):
        body = value["body"].encode("utf-8")
    else:
        raise ValueError("fallback body must be a string")
    status = value.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise ValueError("fallback status must be an HTTP status from 200 to 599")
    content_type = value.get("content_type", "text/html; charset=utf-8")
    if not isinstance(content_type, str) or not content_type or "\n" in content_type or "\r" in content_type:
        raise ValueError("fallback content_type must be a one-line string")
    return Fallback(body, status, content_type)
