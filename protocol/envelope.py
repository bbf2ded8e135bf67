# SPDX-License-Identifier: MIT
"""Elements of the Redis lists (see SPEC.md, "Redis data layout").

An envelope queue holds one JSON object per job, readable and writable with
redis-cli and jq alone: {"id", "body" | "body_b64", "headers"?, "trace"?,
"attempt"?, "error"?, "queue"?, "unique"?}. A raw queue holds the body bytes themselves.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from . import wire
from .errors import ProtocolError

_quote = json.encoder.encode_basestring  # C-accelerated; keeps non-ASCII as UTF-8 like ensure_ascii=False


class Element:
    """One decoded list element."""

    __slots__ = ("id", "body", "headers", "trace", "attempt", "error", "unique", "dead_ms")

    def __init__(
        self,
        id: str | None,
        body: bytes,
        headers: dict | None = None,
        trace: str | None = None,
        attempt: int = 0,
        error: str = "",
        unique: str | None = None,
        dead_ms: int | None = None,
    ) -> None:
        self.id = id
        self.body = body
        self.headers = headers
        self.trace = trace
        self.attempt = attempt
        self.error = error
        self.unique = unique  # the unique key this job holds until it is done (SPEC 16.6)
        self.dead_ms = dead_ms  # when it was dead-lettered, ms since the epoch (dead letters only)

    def __repr__(self) -> str:
        return f"Element(id={self.id!r}, body={self.body[:40]!r}, attempt={self.attempt})"


def encode(
    id: str | None,
    body: bytes,
    headers: dict | None = None,
    trace: str | None = None,
    attempt: int = 0,
    error: str = "",
    queue: str | None = None,
    unique: str | None = None,
    dead_ms: int | None = None,
) -> bytes:
    """One JSON line; the body as text when it is UTF-8, else base64. A dead letter has
    `queue` and `dead_ms` (when it was dead-lettered, ms since the epoch)."""
    if id and not (headers or attempt or error or queue or unique or (trace and trace != id)):
        # The common case, built by hand: 4x cheaper than json.dumps of a dict.
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return b'{"id":%s,"body_b64":"%s"}' % (_quote(id).encode(), base64.b64encode(body))
        return f'{{"id":{_quote(id)},"body":{_quote(text)}}}'.encode()
    env: dict[str, Any] = {}
    if id:
        env["id"] = id
    try:
        env["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        env["body_b64"] = base64.b64encode(body).decode("ascii")
    if headers:
        env["headers"] = headers
    if trace and trace != id:
        env["trace"] = trace
    if attempt:
        env["attempt"] = attempt
    if error:
        env["error"] = error
    if queue:
        env["queue"] = queue
    if unique:
        env["unique"] = unique
    if dead_ms is not None:
        env["dead_ms"] = dead_ms
    return json.dumps(env, ensure_ascii=False, separators=(",", ":"), default=_jsonable).encode("utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):  # msgpack headers may carry bin values; JSON cannot
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} cannot be stored in a Redis envelope")


def decode(raw: bytes) -> Element:
    """Parse an envelope element; ProtocolError(bad_header) when it is not one."""
    try:
        env = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(wire.E_BAD_HEADER, f"malformed envelope: not JSON ({exc})") from None
    if not isinstance(env, dict):
        raise ProtocolError(wire.E_BAD_HEADER, "malformed envelope: not a JSON object")
    if len(env) == 2 and type(env.get("body")) is str and type(env.get("id")) is str and 0 < len(env["id"]) <= 63:
        return Element(env["id"], env["body"].encode("utf-8"))  # common case; 63 chars stay under 255 bytes
    text: Any = env.get("body")  # any JSON value: checked below
    b64: Any = env.get("body_b64")
    if (text is None) == (b64 is None):
        raise ProtocolError(wire.E_BAD_HEADER, "malformed envelope: needs exactly one of body and body_b64")
    if text is not None:
        if not isinstance(text, str):
            raise ProtocolError(wire.E_BAD_HEADER, "malformed envelope: body must be a string")
        body = text.encode("utf-8")
    else:
        try:
            body = base64.b64decode(b64, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise ProtocolError(wire.E_BAD_HEADER, "malformed envelope: body_b64 is not base64") from None
    id_ = env.get("id")
    headers = env.get("headers")
    trace = env.get("trace")
    attempt = env.get("attempt", 0)
    error = env.get("error", "")
    if id_ is not None and not (isinstance(id_, str) and 0 < len(id_.encode()) <= wire.MAX_NAME_BYTES):
        raise ProtocolError(wire.E_BAD_HEADER, "malformed envelope: id must be a string of 1..255 bytes")
    if headers is not None and not isinstance(headers, dict):
        raise ProtocolError(wire.E_BAD_HEADER, "malformed envelope: headers must be an object")
    if trace is not None and not isinstance(trace, str):
        raise ProtocolError(wire.E_BAD_HEADER, "malformed envelope: trace must be a string")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
        raise ProtocolError(wire.E_BAD_HEADER, "malformed envelope: attempt must be a non-negative integer")
    if not isinstance(error, str):
        raise ProtocolError(wire.E_BAD_HEADER, "malformed envelope: error must be a string")
    unique = env.get("unique")
    if unique is not None and not isinstance(unique, str):
        raise ProtocolError(wire.E_BAD_HEADER, "malformed envelope: unique must be a string")
    dead_ms = env.get("dead_ms")
    if not isinstance(dead_ms, int) or isinstance(dead_ms, bool):
        dead_ms = None  # informational only: a hand-written element with another value is still a job
    return Element(id_, body, headers, trace, attempt, error, unique, dead_ms)
