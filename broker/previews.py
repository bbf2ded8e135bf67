# SPDX-License-Identifier: MIT
"""A body's start, for people reading dead letters (the broker never reads bodies otherwise)."""

from __future__ import annotations

PREVIEW_BYTES = 200


def preview(body: bytes) -> str:
    """Text when the start is UTF-8, else hex marked `hex:`; `...` when there is more."""
    head = body[:PREVIEW_BYTES]
    more = "..." if len(body) > PREVIEW_BYTES else ""
    try:
        return head.decode("utf-8") + more
    except UnicodeDecodeError:
        return "hex:" + head.hex() + more
