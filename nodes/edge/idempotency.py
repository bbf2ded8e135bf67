# SPDX-License-Identifier: MIT
"""The Idempotency-Key header of a push route: the client's name for one job, so a retry is recognised.

A push that ends in 504 may still have been queued (the broker confirmed too
late, or the answer was lost): its outcome is unknown. A client that sends
`Idempotency-Key: K` and retries with the same K gets the same job id,
`idem:K`, and the broker confirms a job with an id it holds (queued or in
flight) again without queueing it twice (SPEC 8.1).

The prefix keeps these ids apart from the ids the edge makes itself: a client
that saw one of those in a 202 cannot claim the next one and have another
client's job taken for a resend.
"""

from __future__ import annotations

import re

HEADER = "Idempotency-Key"
ENVIRON_KEY = "HTTP_IDEMPOTENCY_KEY"
PREFIX = "idem:"
MAX_LENGTH = 128
"""Characters in a key: a UUID (36) or a base64 hash (44) fits with room to spare."""

_VALID = re.compile(rf"[A-Za-z0-9._~:+/=-]{{1,{MAX_LENGTH}}}")


class BadKey(ValueError):
    """The header's value cannot be a key; the message says why, for the client's 400."""


def job_id(value: str | None) -> str | None:
    """The job id for the header's value: None without the header; BadKey when it is not a valid key."""
    if value is None:
        return None
    if not _VALID.fullmatch(value):
        raise BadKey(
            f"{HEADER} must be 1 to {MAX_LENGTH} characters from A-Z a-z 0-9 and . _ ~ : + / = - "
            f"(a UUID will do); one key per request"
        )
    return PREFIX + value
