# SPDX-License-Identifier: MIT
"""Wire constants of the zeromesh protocol (ZMSH/1), the one place they live.

See protocol/SPEC.md for what each command means and which header fields it
carries. Nothing outside the codec builds frames from these by hand.
"""

from __future__ import annotations

SIGNATURE = b"ZM"
"""First two bytes of every command frame (frame 0 on the broker endpoint)."""

VERSION = 1
"""Protocol version carried in byte 2 of the command frame."""

# Commands: byte 3 of the command frame.
PUSH = 0x01
CONFIRM = 0x02
JOB = 0x03
ACK = 0x04
NACK = 0x05
REQUEST = 0x06
REPLY = 0x07
ERROR = 0x08
PUBLISH = 0x09
READY = 0x0A
CREDIT = 0x0B
HEARTBEAT = 0x0C
DISCONNECT = 0x0D
EXTEND = 0x0E
CANCEL = 0x0F
ADMIN = 0x10
PUSH_BATCH = 0x11
JOB_BATCH = 0x12
PUSH_PACKED = 0x13
JOB_PACKED = 0x14

COMMAND_NAMES = {
    PUSH: "PUSH",
    CONFIRM: "CONFIRM",
    JOB: "JOB",
    ACK: "ACK",
    NACK: "NACK",
    REQUEST: "REQUEST",
    REPLY: "REPLY",
    ERROR: "ERROR",
    PUBLISH: "PUBLISH",
    READY: "READY",
    CREDIT: "CREDIT",
    HEARTBEAT: "HEARTBEAT",
    DISCONNECT: "DISCONNECT",
    EXTEND: "EXTEND",
    CANCEL: "CANCEL",
    ADMIN: "ADMIN",
    PUSH_BATCH: "PUSH_BATCH",
    JOB_BATCH: "JOB_BATCH",
    PUSH_PACKED: "PUSH_PACKED",
    JOB_PACKED: "JOB_PACKED",
}
COMMANDS_BY_NAME = {name: code for code, name in COMMAND_NAMES.items()}

ITEM_COMMANDS = frozenset({PUSH, JOB, REQUEST, REPLY, PUBLISH})
"""Commands whose frames after the command frame are (header, body) pairs."""

BATCH_COMMANDS = frozenset({PUSH_BATCH, JOB_BATCH})
"""Commands with one header for many jobs: the header's `ids` name the body frames that follow, in order."""

PACKED_COMMANDS = frozenset({PUSH_PACKED, JOB_PACKED})
"""Batch commands with every body in one frame, cut by the header's `sizes` (SPEC section 3.5)."""

MAX_PACKED_BYTES = 1 << 20
"""The body frame of a packed command is at most this long (too_large): 1 MiB."""

# Error codes carried in ERROR.code. Stable strings: clients match on them.
E_BAD_FRAME = "bad_frame"
E_BAD_VERSION = "bad_version"
E_UNKNOWN_COMMAND = "unknown_command"
E_BAD_HEADER = "bad_header"
E_TOO_LARGE = "too_large"
E_NO_RESPONDERS = "no_responders"
E_TIMEOUT = "timeout"
E_QUEUE_FULL = "queue_full"
E_WORKER_LOST = "worker_lost"
E_REMOTE = "remote"
E_CANCELLED = "cancelled"
E_SHUTTING_DOWN = "shutting_down"
E_NOT_FOUND = "not_found"
E_UNKNOWN_OP = "unknown_op"
E_UNKNOWN_PEER = "unknown_peer"
E_UNAVAILABLE = "unavailable"
E_FORBIDDEN = "forbidden"

ERROR_CODES = frozenset(
    {
        E_BAD_FRAME,
        E_BAD_VERSION,
        E_UNKNOWN_COMMAND,
        E_BAD_HEADER,
        E_TOO_LARGE,
        E_NO_RESPONDERS,
        E_TIMEOUT,
        E_QUEUE_FULL,
        E_WORKER_LOST,
        E_REMOTE,
        E_CANCELLED,
        E_SHUTTING_DOWN,
        E_NOT_FOUND,
        E_UNKNOWN_OP,
        E_UNKNOWN_PEER,
        E_UNAVAILABLE,
        E_FORBIDDEN,
    }
)

MAX_HEADER_BYTES = 65536
"""A header frame larger than this is rejected (bad_header)."""

MAX_ITEMS_PER_MESSAGE = 1000
"""At most this many (header, body) pairs in one item message."""

MAX_NAME_BYTES = 255
"""Queue, service and topic names and ids are at most this long in UTF-8."""

MIN_BODY_LIMIT = 1024
"""The smallest body limit a broker may be given (ZEROMESH_MAX_MESSAGE): bodies up to this
size are within every broker's limit, so a client may batch them without risking the batch."""

MAX_IDS_PER_MESSAGE = 200
"""Senders put at most this many ids in one ACK, CONFIRM or EXTEND (200 x 255 bytes fits a header)."""
