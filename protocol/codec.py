# SPDX-License-Identifier: MIT
"""Bytes <-> messages for ZMSH/1: the codec everything else imports (`from zeromesh.protocol import codec`).

Only the codec builds or parses frames. It is this facade over modules with one job each:

    schema    which header fields each command carries, and of what kind
    checks    header checks from that table: generated fast predicates, precise errors
    strict    one header frame -> a checked dict, refusing bin keys and repeated keys
    packing   messages <-> frames (pack_*, unpack, unpack_event, Envelope)
    ids       IdGenerator
"""

from __future__ import annotations

import msgpack as msgpack  # callers that peek at a raw header use codec.msgpack

from .checks import check_header
from .ids import IdGenerator
from .packing import (
    Envelope,
    command_frame,
    pack_batch,
    pack_control,
    pack_event,
    pack_header,
    pack_item,
    pack_items,
    pack_packed,
    unpack,
    unpack_event,
)
from .schema import SCHEMAS
from .strict import surely_valid, unpack_header

__all__ = [
    "SCHEMAS",
    "Envelope",
    "IdGenerator",
    "check_header",
    "command_frame",
    "pack_batch",
    "pack_control",
    "pack_event",
    "pack_header",
    "pack_item",
    "pack_items",
    "pack_packed",
    "surely_valid",
    "unpack",
    "unpack_event",
    "unpack_header",
]
