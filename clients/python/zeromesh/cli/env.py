# SPDX-License-Identifier: MIT
"""Everything the command line reads from the environment, each with its default, in one place.

Flags override these (the verbs decide); docs/CONFIG.md lists the broker's. Beyond this
module, only Client and Worker look at the environment, for ZEROMESH_BROKER and
ZEROMESH_PUB when they are given no endpoint (their documented default).
"""

from __future__ import annotations

import os
from typing import Any

from zeromesh import endpoints as endpoint_lists
from zeromesh.protocol import defaults, redis_url as redis_urls

DATA_DIR = os.path.join("var", "redis")
"""The embedded Redis's folder (ZEROMESH_DATA_DIR), relative to the working directory."""

REDIS_SOCKET = "redis.sock"
"""The embedded Redis's unix socket, in its data folder."""

LOG_LEVEL = "INFO"
"""ZEROMESH_LOG_LEVEL when unset."""

_LOG_TIME = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _get(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def endpoint_list(name: str, value: str) -> str:
    """A list of endpoints as given (one, or several comma-separated), checked by the one parser
    (zeromesh.endpoints.parse): an empty item ends the command with the reason."""
    try:
        return endpoint_lists.joined(endpoint_lists.parse(value))
    except ValueError as exc:
        raise SystemExit(f"zeromesh: {name}: {exc}") from None


def broker_endpoint() -> str:
    """ZEROMESH_BROKER: the brokers' ROUTERs, comma-separated (one broker, or several)."""
    return endpoint_list("ZEROMESH_BROKER", _get("ZEROMESH_BROKER") or defaults.BROKER_ENDPOINT)


def pub_endpoint() -> str:
    """ZEROMESH_PUB: the brokers' PUBs, comma-separated."""
    return endpoint_list("ZEROMESH_PUB", _get("ZEROMESH_PUB") or defaults.PUB_ENDPOINT)


def endpoints() -> tuple[str, str]:
    """(ROUTER, PUB) endpoint lists of the brokers."""
    return broker_endpoint(), pub_endpoint()


def failover_s() -> float:
    """ZEROMESH_FAILOVER_S: how long a client's broker may be unreachable before it moves to the next
    of the list (default 3.0)."""
    raw = _get("ZEROMESH_FAILOVER_S").strip()
    if not raw:
        return endpoint_lists.FAILOVER_S
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise SystemExit(f"zeromesh: ZEROMESH_FAILOVER_S must be a positive number of seconds, got {raw!r}")
    return value


def log_level() -> str:
    """ZEROMESH_LOG_LEVEL, default INFO."""
    return _get("ZEROMESH_LOG_LEVEL") or LOG_LEVEL


def log_time() -> bool:
    """ZEROMESH_LOG_TIME: 1 (the default) puts the time on each log line, 0 leaves it to a supervisor."""
    stamp = _get("ZEROMESH_LOG_TIME", "1").strip().lower()
    if stamp not in _LOG_TIME:
        raise SystemExit(
            f"zeromesh: ZEROMESH_LOG_TIME must be 1 (timestamps, the default) or 0 (none), "
            f"got {_get('ZEROMESH_LOG_TIME')!r}"
        )
    return _LOG_TIME[stamp]


def data_dir(flag: str | None = None) -> str:
    """The embedded Redis's folder: the --data-dir flag, else ZEROMESH_DATA_DIR, else var/redis."""
    return flag or _get("ZEROMESH_DATA_DIR") or DATA_DIR


def redis_setting() -> str:
    """ZEROMESH_REDIS_URL as given: "" when unset (the embedded server), "none" (any case) for no Redis."""
    return _get("ZEROMESH_REDIS_URL")


def redis_off() -> bool:
    """ZEROMESH_REDIS_URL=none: no Redis at all."""
    return redis_setting().lower() == "none"


def embedded_redis_url(folder: str) -> str:
    """The URL of the embedded Redis whose data folder is `folder`."""
    return "unix://" + os.path.abspath(os.path.join(folder, REDIS_SOCKET))


def redis_url(data_dir_flag: str | None = None) -> str:
    """The Redis a node or an edge uses: ZEROMESH_REDIS_URL; unset, the embedded server's socket
    under data_dir(); "" for none."""
    if redis_off():
        return ""
    return redis_setting() or embedded_redis_url(data_dir(data_dir_flag))


def redis_client(url: str) -> Any:
    """A redis-py client (connects lazily; a Sentinel URL follows failovers), or None without a URL.
    A malformed URL ends the command with the reason."""
    if not url:
        return None
    try:
        return redis_urls.connect(url, socket_timeout=2.0, socket_connect_timeout=1.0)
    except ValueError as exc:
        raise SystemExit(f"zeromesh: ZEROMESH_REDIS_URL: {exc}") from None


def redacted(url: str) -> str:
    """The URL with its passwords starred out, for logs and messages."""
    return redis_urls.redact(url)


def max_message() -> str:
    """ZEROMESH_MAX_MESSAGE as given ("" when unset); the broker verb checks it is a number."""
    return _get("ZEROMESH_MAX_MESSAGE")


def broker_name() -> str | None:
    """ZEROMESH_BROKER_NAME, None when unset."""
    return _get("ZEROMESH_BROKER_NAME") or None


def broker_endpoint_setting() -> str | None:
    """ZEROMESH_BROKER as given, None when unset (the broker's config file then decides)."""
    return _get("ZEROMESH_BROKER") or None


def pub_endpoint_setting() -> str | None:
    """ZEROMESH_PUB as given, None when unset."""
    return _get("ZEROMESH_PUB") or None


def http_listen() -> str | None:
    """ZEROMESH_HTTP, the edge's HOST:PORT; None when unset."""
    return _get("ZEROMESH_HTTP") or None
