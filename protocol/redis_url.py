# SPDX-License-Identifier: MIT
"""ZEROMESH_REDIS_URL -> a redis-py client, for every process of the mesh that talks to Redis.

Plain forms go to redis-py's own parser (`redis.Redis.from_url`): redis://, rediss:// and
unix://, with a password in the user part and options in the query (`?db=`, `?password=`,
`ssl_cert_reqs=`...). The Sentinel form is zeromesh's:

    redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB][?OPTIONS]

OPTIONS: sentinel_password (the sentinels' own AUTH), ssl=true (TLS to the sentinels and to the
primary), ssl_ca_certs=PATH, socket_timeout=SECONDS, min_replicas=N (how many replicas a durable
push must reach, SPEC 16; read with `min_replicas(url)`, not a connection setting). The client
comes from `redis.sentinel.Sentinel(...).master_for(SERVICE)`: an ordinary redis.Redis whose
connection pool asks the sentinels for the primary on every new connection, so it follows a
failover without a restart (pipelines, scripts and blocking calls work unchanged).

Imports nothing of zeromesh (this is the ground floor); redis-py is imported when a client is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

SENTINEL_SCHEME = "redis+sentinel"
PLAIN_SCHEMES = ("redis", "rediss", "unix")

_SENTINEL_OPTIONS = ("sentinel_password", "ssl", "ssl_ca_certs", "socket_timeout", "min_replicas")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_SECRET_QUERY = ("password", "pass", "sentinel_password")


@dataclass(frozen=True)
class SentinelURL:
    """A parsed redis+sentinel:// URL."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    password: str | None = None
    username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False
    ssl_ca_certs: str | None = None
    socket_timeout: float | None = None
    min_replicas: int | None = None


def connect(url: str, **options: Any) -> Any:
    """A redis.Redis for `url` (no connection is made yet); `options` are redis.Redis keyword
    arguments (socket_timeout, socket_connect_timeout, health_check_interval...). For a plain URL,
    options in its query win over these, as redis-py's from_url has it; for a Sentinel URL its
    socket_timeout wins too, and the sentinels get the same timeouts as the primary.

    ValueError (naming the URL without its password) when the URL is malformed.
    """
    import redis

    scheme = _scheme(url)
    if scheme != SENTINEL_SCHEME:
        try:
            return redis.Redis.from_url(url, **options)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"malformed Redis URL {redact(url)}: {exc}") from None
    parsed = parse_sentinel(url)
    from redis.sentinel import Sentinel

    common: dict[str, Any] = {}
    if parsed.socket_timeout is not None:
        common["socket_timeout"] = parsed.socket_timeout
    if parsed.ssl:
        common["ssl"] = True
        if parsed.ssl_ca_certs:
            common["ssl_ca_certs"] = parsed.ssl_ca_certs
    sentinel_kwargs: dict[str, Any] = {
        k: v for k, v in options.items() if k in ("socket_timeout", "socket_connect_timeout")
    }
    sentinel_kwargs.update(common)
    if parsed.sentinel_password:
        sentinel_kwargs["password"] = parsed.sentinel_password
    master_kwargs: dict[str, Any] = {**options, **common, "db": parsed.db}
    if parsed.password is not None:
        master_kwargs["password"] = parsed.password
    if parsed.username is not None:
        master_kwargs["username"] = parsed.username
    sentinel = Sentinel(parsed.sentinels, sentinel_kwargs=sentinel_kwargs, **common)
    return sentinel.master_for(parsed.service, redis_class=redis.Redis, **master_kwargs)


def is_sentinel(url: str) -> bool:
    return _scheme(url) == SENTINEL_SCHEME


def min_replicas(url: str) -> int | None:
    """The URL's min_replicas option (Sentinel form only); None when it does not say."""
    return parse_sentinel(url).min_replicas if is_sentinel(url) else None


def parse_sentinel(url: str) -> SentinelURL:
    """Split a redis+sentinel:// URL into its parts; ValueError saying what is wrong."""
    shown = redact(url)
    if _scheme(url) != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL: {shown}")
    rest = url[len(SENTINEL_SCHEME) + 3 :]
    rest, _, query = rest.partition("?")
    if "#" in query:
        query = query.split("#", 1)[0]
    netloc, slash, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = [_host_port(item, shown) for item in netloc.split(",")]
    parts = path.split("/") if slash else []
    if not parts or not parts[0]:
        raise ValueError(
            f"no Sentinel service name in {shown} (expected {SENTINEL_SCHEME}://HOST:PORT[,HOST:PORT...]/SERVICE[/DB])"
        )
    if len(parts) > 2 or (len(parts) == 2 and not parts[1]):
        raise ValueError(f"after the service name only a database number may follow, in {shown}")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError(f"the database must be a number, got {parts[1]!r} in {shown}")
        db = int(parts[1])
    opts: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in _SENTINEL_OPTIONS:
            raise ValueError(f"unknown option {key!r} in {shown} (known: {', '.join(_SENTINEL_OPTIONS)})")
        opts[key] = _option(key, value, shown)
    return SentinelURL(
        sentinels=sentinels, service=unquote(parts[0]), db=db, password=password, username=username, **opts
    )


def redact(url: str) -> str:
    """The URL with every password (user part, or a password option in the query) starred out."""
    if not isinstance(url, str):
        return repr(url)
    if url.split("://", 1)[0].lower() == SENTINEL_SCHEME:
        rest = url[len(SENTINEL_SCHEME) + 3 :]
        rest, q, query = rest.partition("?")
        netloc, slash, path = rest.partition("/")
        if "@" in netloc:
            user = netloc.rsplit("@", 1)[0].partition(":")[0]
            netloc = f"{user}:***@{netloc.rsplit('@', 1)[1]}"
        return f"{SENTINEL_SCHEME}://{netloc}{slash}{path}{q}{_redact_query(query)}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return _redact_safe(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"{userinfo}@{host}"
    out = urlunsplit((parts.scheme, netloc, parts.path, _redact_query(parts.query), parts.fragment))
    if not parts.netloc and url.startswith(parts.scheme + "://"):  # unix:///path keeps its slashes
        out = parts.scheme + "://" + out[len(parts.scheme) + 1 :]
    return out


def _redact_query(query: str) -> str:
    if not query:
        return query
    return "&".join(
        f"{k}=***" if k.lower() in _SECRET_QUERY else f"{k}={v}" for k, v in parse_qsl(query, keep_blank_values=True)
    )


def _scheme(url: str) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(
            f"a Redis URL looks like redis://HOST:PORT, rediss://..., unix:///PATH or "
            f"{SENTINEL_SCHEME}://HOST:PORT/SERVICE; got {url!r}"
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme not in PLAIN_SCHEMES and scheme != SENTINEL_SCHEME:
        raise ValueError(
            f"unknown Redis URL scheme {scheme!r} in {_redact_safe(url)} "
            f"(known: {', '.join(PLAIN_SCHEMES)}, {SENTINEL_SCHEME})"
        )
    return scheme


def _redact_safe(url: str) -> str:
    """Best-effort redaction for a URL that may not parse."""
    return re.sub(r"(://[^/?#]*?):[^@/?#]*@", r"\1:***@", url)


def _host_port(item: str, shown: str) -> tuple[str, int]:
    item = item.strip()
    if not item:
        raise ValueError(f"empty sentinel address in {shown}")
    if item.startswith("["):  # [IPv6]:PORT
        host, _, port = item[1:].partition("]")
        port = port[1:] if port.startswith(":") else ""
    else:
        host, _, port = item.rpartition(":")
    if not host or not port:
        raise ValueError(f"sentinel address {item!r} is not HOST:PORT, in {shown}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sentinel port {port!r} is not a port number, in {shown}")
    return host, int(port)


def _option(key: str, value: str, shown: str) -> Any:
    if key == "ssl":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError(f"ssl must be true or false, got {value!r} in {shown}")
    if key == "socket_timeout":
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError(f"socket_timeout must be a number of seconds, got {value!r} in {shown}") from None
        if seconds <= 0:
            raise ValueError(f"socket_timeout must be positive, got {value!r} in {shown}")
        return seconds
    if key == "min_replicas":
        if not value.isdigit():
            raise ValueError(f"min_replicas must be a whole number >= 0, got {value!r} in {shown}")
        return int(value)
    if not value:
        raise ValueError(f"option {key} is empty in {shown}")
    return unquote(value)
