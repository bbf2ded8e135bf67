# SPDX-License-Identifier: MIT
"""Redis list elements: JSON envelopes that redis-cli and jq can read and write."""

from __future__ import annotations

import json

import pytest

from zeromesh.protocol import envelope
from zeromesh.protocol.errors import ProtocolError


@pytest.mark.parametrize("body", [b"", b"hello", 'héllo "q"\n\t\u2028'.encode(), b"\xff\x00binary", b"x" * 5000])
@pytest.mark.parametrize("extra", [{}, {"headers": {"k": "v"}, "trace": "t-1", "attempt": 3, "error": "boom"}])
def test_round_trip_and_plain_json(body, extra):
    raw = envelope.encode("job-1", body, **extra)
    parsed = json.loads(raw)  # what jq sees
    assert parsed["id"] == "job-1"
    assert ("body" in parsed) != ("body_b64" in parsed)
    el = envelope.decode(raw)
    assert (el.id, el.body) == ("job-1", body)
    assert el.attempt == extra.get("attempt", 0) and el.error == extra.get("error", "")
    assert el.headers == extra.get("headers") and el.trace == extra.get("trace")


def test_fast_path_matches_json_dumps():
    fast = envelope.encode("id-1", 'ü"\\'.encode())
    assert json.loads(fast) == {"id": "id-1", "body": 'ü"\\'}
    assert b"\\u00fc" not in fast  # UTF-8 kept as is, like ensure_ascii=False


def test_bash_style_element_without_id():
    el = envelope.decode(b'{"body":"hello ann"}')
    assert el.id is None and el.body == b"hello ann"


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"plain text", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (b'{"id":"x"}', "exactly one of body"),
        (b'{"body":"a","body_b64":"YQ=="}', "exactly one of body"),
        (b'{"body_b64":"***"}', "not base64"),
        (b'{"body":"a","attempt":-1}', "attempt"),
        (b'{"body":"a","id":""}', "id must be"),
        (b'{"body":"a","headers":[1]}', "headers"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_elements_are_refused(raw, why):
    with pytest.raises(ProtocolError) as info:
        envelope.decode(raw)
    assert why in info.value.message and info.value.code == "bad_header"
