# SPDX-License-Identifier: MIT
"""The edge's trace id from a W3C traceparent header (SPEC 12.1)."""

from __future__ import annotations

import re

import pytest

from zeromesh.nodes.edge.traceparent import trace_id

pytestmark = pytest.mark.unit

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
VALID = f"00-{TRACE}-00f067aa0ba902b7-01"


def test_a_valid_traceparent_gives_its_trace_id():
    assert trace_id(VALID) == TRACE
    assert trace_id(f"  {VALID} ") == TRACE  # optional whitespace around a header value
    assert trace_id(f"00-{TRACE}-00f067aa0ba902b7-00") == TRACE  # not sampled: still the caller's trace


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f"01-{TRACE}-00f067aa0ba902b7-01",  # another version
        f"ff-{TRACE}-00f067aa0ba902b7-01",
        f"00-{TRACE[:-1]}-00f067aa0ba902b7-01",  # short trace-id
        f"00-{TRACE}0-00f067aa0ba902b7-01",  # long trace-id
        f"00-{TRACE}-00f067aa0ba902b-01",  # short parent-id
        f"00-{TRACE}-00f067aa0ba902b7-1",  # short flags
        f"00-{TRACE.upper()}-00f067aa0ba902b7-01",  # upper case
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace-id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent-id
        f"00-{TRACE}-00f067aa0ba902b7-01-extra",
        "garbage",
    ],
)
def test_anything_else_gives_a_fresh_32_hex_trace_id(header):
    got = trace_id(header)
    assert re.fullmatch(r"[0-9a-f]{32}", got) and got != TRACE
    assert trace_id(header) != got  # fresh each time
