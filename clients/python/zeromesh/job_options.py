# SPDX-License-Identifier: MIT
"""A push's options for later and for once: the PUSH header fields they become (SPEC 16.5, 16.6)."""

from __future__ import annotations

import datetime
import time
from typing import Any

from zeromesh.protocol import wire


def later(delay: float | None, at: datetime.datetime | None) -> dict[str, Any]:
    """{"at_ms": ...} for a job scheduled `delay` seconds from now or at `at`; {} for now."""
    if delay is not None and at is not None:
        raise ValueError("give delay or at, not both")
    if delay is not None:
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
            raise ValueError(f"delay is a number of seconds, 0 or more, got {delay!r}")
        return {"at_ms": int((time.time() + delay) * 1000)}
    if at is not None:
        if not isinstance(at, datetime.datetime) or at.utcoffset() is None:
            # A naive time would mean whatever the machine's zone is: ambiguous across machines.
            raise ValueError(f"at is a timezone-aware datetime (an instant), got {at!r}")
        return {"at_ms": int(at.timestamp() * 1000)}
    return {}


def unique_fields(key: str, ttl: float | None) -> dict[str, Any]:
    """{"unique_key", "unique_ttl_ms"?}: held until the job is done, or for `ttl` seconds."""
    if not isinstance(key, str) or not 0 < len(key.encode("utf-8")) <= wire.MAX_NAME_BYTES:
        raise ValueError(f"unique_key is a str of 1 to {wire.MAX_NAME_BYTES} bytes, got {key!r}")
    fields: dict[str, Any] = {"unique_key": key}
    if ttl is not None:
        if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0:
            raise ValueError(f"unique_ttl is a number of seconds above 0, got {ttl!r}")
        fields["unique_ttl_ms"] = max(1, int(ttl * 1000))
    return fields
