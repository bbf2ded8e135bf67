# SPDX-License-Identifier: MIT
"""Which header fields each ZMSH/1 command carries, and of what kind (SPEC.md sections 4 and 6).

Data only: `checks` turns this table into the header checks, and
tests/unit/test_codec.py compares it with the SPEC's tables.
"""

from __future__ import annotations

from . import wire

# Field kinds.
STR = "str"
INT = "int"  # an int >= 0, never a bool
BOOL = "bool"
MAP = "map"  # a map with string keys
STRLIST = "strlist"  # a list of names or ids, each bounded like BOUNDED fields
INTLIST = "intlist"  # a list of ints >= 0

Fields = dict[str, str]
"""{field name: kind}."""

SCHEMAS: dict[int, tuple[Fields, Fields]] = {
    wire.PUSH: (
        {"id": STR, "queue": STR},
        {"trace": STR, "parent": STR, "headers": MAP, "at_ms": INT, "unique_key": STR, "unique_ttl_ms": INT},
    ),
    wire.CONFIRM: ({"id": STR, "ids": STRLIST}, {"batches": STRLIST, "duplicates": MAP}),
    wire.JOB: (
        {"id": STR, "queue": STR, "attempt": INT, "trace": STR, "lease_ms": INT},
        {"error": STR, "headers": MAP},
    ),
    wire.ACK: ({"id": STR, "ids": STRLIST}, {}),
    wire.NACK: ({"id": STR, "re": STR, "error": STR}, {"retry": BOOL, "retry_in_ms": INT}),
    wire.REQUEST: (
        {"id": STR, "service": STR, "timeout_ms": INT},
        {"trace": STR, "parent": STR, "wait": BOOL, "headers": MAP, "attempt": INT, "error": STR},
    ),
    wire.REPLY: ({"id": STR, "re": STR}, {"headers": MAP}),
    wire.ERROR: (
        {"id": STR, "code": STR, "message": STR},
        {"re": STR, "name": STR, "traceback": STR},
    ),
    wire.PUBLISH: ({"id": STR, "topic": STR}, {"headers": MAP, "seq": INT, "epoch": STR}),
    wire.READY: (
        {"id": STR, "names": STRLIST, "credit": INT},
        {"label": STR, "lang": STR, "host": STR, "batch": BOOL, "packed": BOOL},
    ),
    wire.CREDIT: ({"id": STR, "credit": INT}, {}),
    wire.HEARTBEAT: ({"id": STR}, {"epoch": STR, "re": STR}),
    wire.DISCONNECT: ({"id": STR}, {"reason": STR}),
    wire.EXTEND: ({"id": STR, "ids": STRLIST, "lease_ms": INT}, {}),
    wire.CANCEL: ({"id": STR, "re": STR}, {}),
    wire.ADMIN: ({"id": STR, "op": STR}, {"args": MAP}),
    wire.PUSH_BATCH: (
        {"id": STR, "queue": STR, "ids": STRLIST},
        {"trace": STR, "parent": STR, "headers": MAP, "at_ms": INT},
    ),
    wire.JOB_BATCH: ({"id": STR, "queue": STR, "lease_ms": INT, "ids": STRLIST}, {"headers": MAP}),
    wire.PUSH_PACKED: (
        {"id": STR, "queue": STR, "ids": STRLIST, "sizes": INTLIST},
        {"trace": STR, "parent": STR, "headers": MAP, "at_ms": INT},
    ),
    wire.JOB_PACKED: ({"id": STR, "queue": STR, "lease_ms": INT, "ids": STRLIST, "sizes": INTLIST}, {"headers": MAP}),
}
"""command -> (required fields, optional fields). A nil optional field counts as absent."""

BOUNDED = frozenset({"id", "re", "queue", "service", "topic", "trace", "parent"})
"""STR fields that name things or identify messages: 1..wire.MAX_NAME_BYTES bytes of UTF-8."""
