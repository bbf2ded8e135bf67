# SPDX-License-Identifier: MIT
"""The trace id of an HTTP request (SPEC 12.1): the W3C trace-id of a valid `traceparent`, else a new one.

A valid header (W3C Trace Context, version 00) is `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex
flags>`, lower case, with neither id all zeros. Anything else (another version, other
lengths, upper case, zeros) is ignored rather than refused: the request is served under a
fresh random 32-hex trace id.
"""

from __future__ import annotations

import re
import secrets

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_ZERO_TRACE = "0" * 32
_ZERO_PARENT = "0" * 16

ENVIRON_KEY = "HTTP_TRACEPARENT"
RESPONSE_HEADER = "X-Zeromesh-Trace"


def new_trace_id() -> str:
    return secrets.token_hex(16)


def trace_id(traceparent: str | None) -> str:
    """The trace-id of a valid traceparent header value, else a new random one."""
    if traceparent:
        match = _TRACEPARENT.fullmatch(traceparent.strip())
        if match is not None and match.group(1) != _ZERO_TRACE and match.group(2) != _ZERO_PARENT:
            return match.group(1)
    return new_trace_id()
