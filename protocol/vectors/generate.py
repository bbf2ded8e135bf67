# SPDX-License-Identifier: MIT
"""Write the ZMSH/1 conformance vectors (protocol/vectors/**.json).

Run from anywhere: `python protocol/vectors/generate.py [--out DIR]`.

Frames are built here with msgpack directly, or byte by byte, and never via
the codec (protocol/codec.py and the modules behind it), so that the vectors
check the codec rather than echo it. The constants below are copied from
SPEC.md on purpose for the same reason.
Output is deterministic: running it twice gives identical files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import msgpack

HERE = Path(__file__).resolve().parent

COMMANDS = {
    "PUSH": 0x01,
    "CONFIRM": 0x02,
    "JOB": 0x03,
    "ACK": 0x04,
    "NACK": 0x05,
    "REQUEST": 0x06,
    "REPLY": 0x07,
    "ERROR": 0x08,
    "PUBLISH": 0x09,
    "READY": 0x0A,
    "CREDIT": 0x0B,
    "HEARTBEAT": 0x0C,
    "DISCONNECT": 0x0D,
    "EXTEND": 0x0E,
    "CANCEL": 0x0F,
    "ADMIN": 0x10,
    "PUSH_BATCH": 0x11,
    "JOB_BATCH": 0x12,
    "PUSH_PACKED": 0x13,
    "JOB_PACKED": 0x14,
}
ITEM_COMMANDS = {"PUSH", "JOB", "REQUEST", "REPLY", "PUBLISH"}
BATCH_COMMANDS = {"PUSH_BATCH", "JOB_BATCH"}
PACKED_COMMANDS = {"PUSH_PACKED", "JOB_PACKED"}

ID = "5f2a9c1e0b7d4a63"  # the random prefix of every id in these vectors
BINARY_BODY = bytes(range(256))
UTF8_BODY = "héllo wörld, こんにちは, 🦀".encode()


def cmd(name: str, version: int = 1) -> bytes:
    return b"ZM" + bytes((version, COMMANDS[name]))


def pack(obj) -> bytes:
    # The smallest encoding of each value and str/bin kept apart: what the
    # "canonical" flag in the vectors promises a re-encoder reproduces.
    return msgpack.packb(obj, use_bin_type=True)


def to_json(value):
    """The decoded-JSON mapping of README.md: bin and ext get tagged objects."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, msgpack.ExtType):
        return {"$ext": [value.code, value.data.hex()]}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


class Writer:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.count = 0

    def _write(self, rel: str, vector: dict) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        big = len(vector["frames_hex"]) > 40
        # Small files pretty, for people reading them; big ones compact.
        text = json.dumps(vector, ensure_ascii=False, indent=None if big else 2, separators=(",", ":") if big else None)
        path.write_text(text + "\n", encoding="utf-8")
        self.count += 1

    def items(
        self,
        command: str,
        name: str,
        description: str,
        items: list,
        *,
        raw_headers: list[bytes] | None = None,
        max_body: int | None = None,
    ) -> None:
        """A valid item message. items: [(header, body)]; raw_headers overrides the packing."""
        frames = [cmd(command)]
        for i, (header, body) in enumerate(items):
            frames.append(raw_headers[i] if raw_headers else pack(header))
            frames.append(body)
        vector: dict[str, Any] = {
            "description": description,
            "endpoint": "broker",
            "frames_hex": [f.hex() for f in frames],
        }
        if max_body is not None:
            vector["max_body"] = max_body
        if raw_headers:
            vector["canonical"] = False
        vector["decoded"] = {
            "command": command,
            "items": [{"header": to_json(h), "body_hex": b.hex()} for h, b in items],
        }
        self._write(f"valid/{command.lower()}/{name}.json", vector)

    def control(self, command: str, name: str, description: str, header: dict, *, raw: bytes | None = None) -> None:
        frames = [cmd(command), raw if raw is not None else pack(header)]
        vector: dict[str, Any] = {
            "description": description,
            "endpoint": "broker",
            "frames_hex": [f.hex() for f in frames],
        }
        if raw is not None:
            vector["canonical"] = False
        vector["decoded"] = {"command": command, "header": to_json(header)}
        self._write(f"valid/{command.lower()}/{name}.json", vector)

    def batch(self, command: str, name: str, description: str, header: dict, bodies: list[bytes]) -> None:
        """A valid batch message: one header whose ids name the body frames."""
        frames = [cmd(command), pack(header), *bodies]
        self._write(
            f"valid/{command.lower()}/{name}.json",
            {
                "description": description,
                "endpoint": "broker",
                "frames_hex": [f.hex() for f in frames],
                "decoded": {"command": command, "header": to_json(header), "bodies_hex": [b.hex() for b in bodies]},
            },
        )

    def packed(
        self,
        command: str,
        name: str,
        description: str,
        header: dict,
        bodies: list[bytes],
        *,
        max_body: int | None = None,
    ) -> None:
        """A valid packed message: the header plus sizes, and the bodies back to back in one frame."""
        header = {**header, "sizes": [len(b) for b in bodies]}
        frames = [cmd(command), pack(header), b"".join(bodies)]
        vector: dict[str, Any] = {
            "description": description,
            "endpoint": "broker",
            "frames_hex": [f.hex() for f in frames],
        }
        if max_body is not None:
            vector["max_body"] = max_body
        vector["decoded"] = {"command": command, "header": to_json(header), "bodies_hex": [b.hex() for b in bodies]}
        self._write(f"valid/{command.lower()}/{name}.json", vector)

    def invalid(
        self, name: str, description: str, frames: list[bytes], error: str, *, max_body: int | None = None
    ) -> None:
        vector: dict[str, Any] = {
            "description": description,
            "endpoint": "broker",
            "frames_hex": [f.hex() for f in frames],
        }
        if max_body is not None:
            vector["max_body"] = max_body
        vector["error"] = error
        self._write(f"invalid/{name}.json", vector)

    def event(self, name: str, description: str, topic: str, header: dict, body: bytes) -> None:
        frames = [topic.encode(), pack(header), body]
        self._write(
            f"events/valid/{name}.json",
            {
                "description": description,
                "endpoint": "pub",
                "frames_hex": [f.hex() for f in frames],
                "decoded": {"topic": topic, "header": to_json(header), "body_hex": body.hex()},
            },
        )

    def bad_event(self, name: str, description: str, frames: list[bytes], error: str) -> None:
        self._write(
            f"events/invalid/{name}.json",
            {"description": description, "endpoint": "pub", "frames_hex": [f.hex() for f in frames], "error": error},
        )


def item_variants(w: Writer, command: str, minimal: dict, full: dict, what: str) -> None:
    """The body and batch variants every item command gets."""

    def h(n: int, base: dict) -> dict:
        return {**base, "id": f"{ID}-{n:x}"}

    w.items(
        command,
        "minimal",
        f"{command} with only the required fields and a short ASCII body.",
        [(h(1, minimal), b"hello")],
    )
    w.items(command, "all_optional_fields", f"{command} with every optional field present.", [(h(2, full), b"hello")])
    w.items(
        command, "empty_body", f"{command} whose body frame is empty (zero bytes): allowed.", [(h(3, minimal), b"")]
    )
    w.items(
        command,
        "binary_body",
        f"{command} with a body of all 256 byte values: bodies are opaque.",
        [(h(4, minimal), BINARY_BODY)],
    )
    w.items(
        command,
        "utf8_body",
        f"{command} with a UTF-8 body (multi-byte characters): still opaque bytes.",
        [(h(5, minimal), UTF8_BODY)],
    )
    w.items(
        command,
        "batch",
        f"One {command} message carrying three {what}: (header, body) pairs in order.",
        [(h(6, minimal), b"one"), (h(7, full), b""), (h(8, minimal), BINARY_BODY[:4])],
    )


def valid(w: Writer) -> None:
    trace = f"{ID}-1"
    # PUSH
    item_variants(
        w,
        "PUSH",
        {"queue": "thumbs"},
        {"queue": "thumbs", "trace": "trace-0001", "headers": {"content-type": "image/png", "size": 1024}},
        "jobs",
    )
    w.items(
        "PUSH", "spec_example", "The PUSH example of SPEC.md.", [({"id": f"{ID}-1", "queue": "thumbs"}, b"cat.png")]
    )
    w.items(
        "PUSH",
        "unknown_fields_ignored",
        "Fields a receiver does not know are accepted whatever their msgpack type, and kept in the decoded header.",
        [
            (
                {
                    "id": f"{ID}-9",
                    "queue": "thumbs",
                    "x-nil": None,
                    "x-float": 1.5,
                    "x-neg": -7,
                    "x-bin": b"\x00\xff",
                    "x-ext": msgpack.ExtType(5, b"\x01\x02"),
                    "x-map": {"a": [1, "two", True]},
                    "x-list": [],
                },
                b"x",
            )
        ],
    )
    w.items(
        "PUSH",
        "optional_nil_is_absent",
        "An optional field whose value is nil is treated as absent (here trace and headers).",
        [({"id": f"{ID}-a", "queue": "thumbs", "trace": None, "headers": None}, b"x")],
    )
    w.items(
        "PUSH",
        "headers_any_values",
        "The 'headers' map needs string keys; its values may be any msgpack type.",
        [
            (
                {
                    "id": f"{ID}-b",
                    "queue": "thumbs",
                    "headers": {"n": 3, "f": 0.25, "b": b"\xde\xad", "l": ["a", 1], "m": {"k": None}, "t": False},
                },
                b"x",
            )
        ],
    )
    w.items(
        "PUSH",
        "names_255_bytes",
        "id and queue of exactly 255 UTF-8 bytes (multi-byte characters count as their bytes).",
        [({"id": "é" * 127 + "x", "queue": "q" * 255}, b"x")],
    )
    w.items(
        "PUSH",
        "non_ascii_names",
        "Queue names and ids are UTF-8 strings, not just ASCII.",
        [({"id": f"{ID}-ü", "queue": "vidéos/缩略图"}, b"x")],
    )
    w.items(
        "PUSH",
        "body_at_limit",
        "A body exactly as large as the receiver's limit (max_body) is accepted.",
        [({"id": f"{ID}-c", "queue": "thumbs"}, b"0123456789abcdef")],
        max_body=16,
    )
    # Non-canonical encodings: a receiver must accept any valid msgpack form.
    header = {"id": f"{ID}-d", "queue": "thumbs"}
    jid = f"{ID}-d".encode()
    raw = (
        b"\xde\x00\x02"  # map16, 2 pairs
        + b"\xd9\x02id"
        + b"\xd9"
        + bytes((len(jid),))
        + jid  # str8 key and value
        + b"\xda\x00\x05queue"
        + b"\xdb\x00\x00\x00\x06thumbs"
    )  # str16 key, str32 value
    w.items(
        "PUSH",
        "non_canonical_encoding",
        "map16, str8, str16 and str32 where fixmap/fixstr would do: receivers accept every valid msgpack form.",
        [(header, b"x")],
        raw_headers=[raw],
    )
    items = [({"id": f"{n:x}", "queue": "q"}, b"") for n in range(1, 1001)]
    w.items("PUSH", "max_items", "Exactly 1000 items, the most one message may carry.", items)

    # JOB
    job = {"queue": "thumbs", "attempt": 1, "trace": trace, "lease_ms": 60000}
    item_variants(
        w, "JOB", job, {**job, "attempt": 3, "error": "lease expired", "headers": {"content-type": "image/png"}}, "jobs"
    )
    w.items(
        "JOB",
        "spec_example",
        "The JOB example of SPEC.md.",
        [({"id": f"{ID}-1", "queue": "thumbs", "attempt": 1, "trace": trace, "lease_ms": 60000}, b"cat.png")],
    )
    w.items(
        "JOB",
        "big_integers",
        "Integers use any msgpack width up to uint64.",
        [({**job, "id": f"{ID}-e", "attempt": 4294967296, "lease_ms": 18446744073709551615}, b"")],
    )
    w.items(
        "JOB",
        "zero_values",
        "Zero is a valid non-negative integer (lease_ms 0, attempt 0).",
        [({**job, "id": f"{ID}-f", "attempt": 0, "lease_ms": 0}, b"")],
    )

    # REQUEST (client -> broker and broker -> worker)
    item_variants(
        w,
        "REQUEST",
        {"service": "resize", "timeout_ms": 5000},
        {
            "service": "resize",
            "timeout_ms": 5000,
            "wait": True,
            "trace": "trace-0002",
            "headers": {"accept": "image/webp"},
        },
        "requests",
    )
    w.items(
        "REQUEST",
        "spec_example",
        "The REQUEST example of SPEC.md (client to broker).",
        [({"id": f"{ID}-2", "service": "resize", "timeout_ms": 5000}, b"\x81\xa5width\xcd\x01\x00")],
    )
    w.items(
        "REQUEST",
        "to_worker",
        "REQUEST as the broker forwards it: remaining timeout, trace, attempt, last error.",
        [
            (
                {
                    "id": f"{ID}-2",
                    "service": "resize",
                    "timeout_ms": 4210,
                    "trace": f"{ID}-2",
                    "attempt": 2,
                    "error": "worker lost",
                },
                b"\x81\xa5width\xcd\x01\x00",
            )
        ],
    )

    # REPLY
    item_variants(
        w, "REPLY", {"re": f"{ID}-2"}, {"re": f"{ID}-2", "headers": {"content-type": "image/webp"}}, "replies"
    )
    w.items(
        "REPLY",
        "spec_example",
        "The REPLY example of SPEC.md.",
        [({"id": "9c4e01d2a7f35b26-1", "re": f"{ID}-2"}, b"ok")],
    )
    status = {
        "epoch": "3b9f0c2d",
        "uptime_s": 12.5,
        "queues": {
            "thumbs": {
                "depth": 0,
                "in_flight": 1,
                "dead_letters": 0,
                "enqueued": 3,
                "acked": 2,
                "rate_in": 0.5,
                "rate_out": 0.5,
            }
        },
        "services": {"resize": {"pending": 0, "in_flight": 0, "workers": 1}},
        "workers": [
            {"peer": "00b4c3a1f2", "label": "w1", "names": ["thumbs", "resize"], "credit": 16, "held": 1, "idle_s": 0.2}
        ],
        "counters": {"bad_header": 1},
    }
    w.items(
        "REPLY",
        "admin_status",
        "The broker's answer to ADMIN status: the body is a msgpack map.",
        [({"id": "b7a1-1", "re": f"{ID}-10"}, pack(status))],
    )

    # PUBLISH
    item_variants(w, "PUBLISH", {"topic": "news.sports"}, {"topic": "news.sports", "headers": {"lang": "en"}}, "events")
    w.items(
        "PUBLISH",
        "spec_example",
        "The PUBLISH example of SPEC.md.",
        [({"id": f"{ID}-3", "topic": "news.sports"}, b"goal!")],
    )

    # Control commands
    w.control(
        "CONFIRM",
        "spec_example",
        "The CONFIRM example of SPEC.md: one job accepted.",
        {"id": "b7a1-2", "ids": [f"{ID}-1"]},
    )
    w.control(
        "CONFIRM",
        "many_ids",
        "One CONFIRM for every job drained from a peer in one poll round.",
        {"id": "b7a1-3", "ids": [f"{ID}-{n:x}" for n in range(1, 9)]},
    )
    w.control(
        "CONFIRM", "empty_ids", "An empty ids list is well formed (nothing to confirm).", {"id": "b7a1-4", "ids": []}
    )
    w.control(
        "CONFIRM",
        "batches",
        "The CONFIRM of the PUSH_BATCH example of SPEC.md: the whole batch by its message id.",
        {"id": "b7a1-6", "ids": [], "batches": [f"{ID}-3"]},
    )
    w.control(
        "CONFIRM",
        "ids_and_batches",
        "Single jobs and whole batches confirmed together.",
        {"id": "b7a1-7", "ids": [f"{ID}-1"], "batches": [f"{ID}-30", f"{ID}-60"]},
    )

    w.control("ACK", "spec_example", "The ACK example of SPEC.md.", {"id": "77d0e5b1c2a4e8f0-1", "ids": [f"{ID}-1"]})
    w.control(
        "ACK",
        "batch",
        "A cumulative ACK of several jobs.",
        {"id": "77d0e5b1c2a4e8f0-2", "ids": [f"{ID}-{n:x}" for n in range(2, 6)]},
    )

    w.control(
        "NACK",
        "spec_example",
        "The NACK example of SPEC.md: retry defaults to true.",
        {"id": "77d0e5b1c2a4e8f0-3", "re": f"{ID}-1", "error": "ValueError: bad image"},
    )
    w.control(
        "NACK",
        "no_retry",
        "NACK with retry false: dead-letter the job at once.",
        {"id": "77d0e5b1c2a4e8f0-4", "re": f"{ID}-1", "error": "corrupt input", "retry": False},
    )
    w.control(
        "NACK",
        "empty_error",
        "An empty error string is allowed (only names and ids are bounded).",
        {"id": "77d0e5b1c2a4e8f0-5", "re": f"{ID}-1", "error": ""},
    )

    w.control(
        "ERROR",
        "spec_example",
        "The ERROR example of SPEC.md: no worker serves the service.",
        {"id": "b7a1-5", "re": f"{ID}-2", "code": "no_responders", "message": "no worker for 'resize'"},
    )
    w.control(
        "ERROR",
        "remote",
        "A handler failed: the (name, message, traceback) triple.",
        {
            "id": "77d0e5b1c2a4e8f0-6",
            "re": f"{ID}-2",
            "code": "remote",
            "message": "division by zero",
            "name": "ZeroDivisionError",
            "traceback": 'Traceback (most recent call last):\n  File "w.py", line 3\nZeroDivisionError',
        },
    )
    w.control(
        "ERROR",
        "no_re",
        "ERROR without 're': the offending message id could not be read.",
        {"id": "b7a1-6", "code": "bad_frame", "message": "frame 0 is not a ZM command frame"},
    )
    w.control(
        "ERROR",
        "unknown_code",
        "An error code this receiver does not know is still a well-formed ERROR.",
        {"id": "b7a1-7", "re": f"{ID}-2", "code": "some_future_code", "message": ""},
    )

    w.control(
        "READY",
        "spec_example",
        "The READY example of SPEC.md.",
        {"id": "77d0e5b1c2a4e8f0-1", "names": ["thumbs", "resize"], "credit": 16},
    )
    w.control(
        "READY",
        "batch",
        "READY of a worker that takes JOB_BATCH.",
        {"id": "77d0e5b1c2a4e8f0-9", "names": ["thumbs"], "credit": 500, "batch": True},
    )
    w.control(
        "READY",
        "packed",
        "READY of a worker that takes JOB_BATCH and JOB_PACKED.",
        {"id": "77d0e5b1c2a4e8f0-a", "names": ["thumbs"], "credit": 500, "batch": True, "packed": True},
    )
    w.control(
        "READY",
        "with_label_lang",
        "READY with the optional label and lang.",
        {"id": "77d0e5b1c2a4e8f0-2", "names": ["thumbs"], "credit": 4, "label": "gpu-box-3", "lang": "ruby"},
    )
    w.control(
        "READY",
        "no_names_zero_credit",
        "Registering for nothing with credit 0 is well formed.",
        {"id": "77d0e5b1c2a4e8f0-3", "names": [], "credit": 0},
    )

    w.control(
        "CREDIT",
        "spec_example",
        "The CREDIT example of SPEC.md: widen the window to 32.",
        {"id": "77d0e5b1c2a4e8f0-7", "credit": 32},
    )
    w.control("CREDIT", "pause", "CREDIT 0 pauses the worker.", {"id": "77d0e5b1c2a4e8f0-8", "credit": 0})

    w.control(
        "HEARTBEAT",
        "spec_example",
        "The HEARTBEAT example of SPEC.md (broker to worker).",
        {"id": "b7a1-8", "epoch": "3b9f0c2d"},
    )
    w.control("HEARTBEAT", "minimal", "A peer's HEARTBEAT: only an id.", {"id": "77d0e5b1c2a4e8f0-9"})
    padded = _padded_header(65536)
    w.control(
        "HEARTBEAT",
        "header_at_limit",
        "A header of exactly 65536 bytes (an unknown field pads it) is accepted.",
        msgpack.unpackb(padded),
    )

    w.control(
        "DISCONNECT",
        "spec_example",
        "The DISCONNECT example of SPEC.md (broker shutting down).",
        {"id": "b7a1-9", "reason": "shutting_down"},
    )
    w.control("DISCONNECT", "minimal", "A worker leaving: only an id.", {"id": "77d0e5b1c2a4e8f0-a"})

    w.control(
        "EXTEND",
        "spec_example",
        "The EXTEND example of SPEC.md.",
        {"id": "77d0e5b1c2a4e8f0-b", "ids": [f"{ID}-1"], "lease_ms": 120000},
    )
    w.control(
        "EXTEND",
        "batch",
        "EXTEND several held jobs at once.",
        {"id": "77d0e5b1c2a4e8f0-c", "ids": [f"{ID}-1", f"{ID}-2"], "lease_ms": 30000},
    )

    w.control(
        "CANCEL",
        "spec_example",
        "The CANCEL example of SPEC.md (client gives up a request).",
        {"id": f"{ID}-4", "re": f"{ID}-2"},
    )

    w.control(
        "ADMIN", "spec_example", "The ADMIN example of SPEC.md: status, no args.", {"id": "c01d-1", "op": "status"}
    )
    w.control(
        "ADMIN", "trace", "ADMIN trace with its args map.", {"id": "c01d-2", "op": "trace", "args": {"id": f"{ID}-1"}}
    )
    w.control(
        "ADMIN",
        "dead_letters",
        "ADMIN dead_letters with a limit.",
        {"id": "c01d-3", "op": "dead_letters", "args": {"queue": "thumbs", "limit": 10}},
    )
    w.control(
        "ADMIN",
        "replay_ids",
        "ADMIN replay of chosen dead letters.",
        {"id": "c01d-4", "op": "replay", "args": {"queue": "thumbs", "ids": [f"{ID}-1"]}},
    )
    w.control("ADMIN", "purge", "ADMIN purge.", {"id": "c01d-5", "op": "purge", "args": {"queue": "thumbs"}})
    w.control(
        "ADMIN",
        "unknown_op_is_well_formed",
        "An op the broker does not know is well formed; the broker answers ERROR unknown_op.",
        {"id": "c01d-6", "op": "frobnicate"},
    )


def batches(w: Writer) -> None:
    two = [f"{ID}-1", f"{ID}-2"]
    w.batch(
        "PUSH_BATCH",
        "spec_example",
        "The PUSH_BATCH example of SPEC.md: two jobs, one header.",
        {"id": f"{ID}-3", "queue": "thumbs", "ids": two},
        [b"cat.png", b"dog.png"],
    )
    w.batch(
        "PUSH_BATCH",
        "all_optional_fields",
        "PUSH_BATCH with a shared trace and headers.",
        {"id": f"{ID}-4", "queue": "thumbs", "ids": two, "trace": "t-1", "headers": {"size": 64}},
        [b"cat.png", b"dog.png"],
    )
    w.batch(
        "PUSH_BATCH",
        "one_job",
        "A batch of one job is well formed.",
        {"id": f"{ID}-5", "queue": "thumbs", "ids": [f"{ID}-1"]},
        [b""],
    )
    w.batch(
        "PUSH_BATCH",
        "bodies_opaque",
        "Empty, binary and UTF-8 bodies in one batch, in order.",
        {"id": f"{ID}-6", "queue": "q", "ids": [f"{ID}-{n:x}" for n in range(7, 10)]},
        [b"", BINARY_BODY, UTF8_BODY],
    )
    w.batch(
        "PUSH_BATCH",
        "unknown_field",
        "A field the receiver does not know is ignored (and decoded).",
        {"id": f"{ID}-a", "queue": "q", "ids": [f"{ID}-b"], "x-future": [1, 2]},
        [b"x"],
    )
    w.batch(
        "PUSH_BATCH",
        "thousand_jobs",
        "The most jobs one batch may carry: 1000.",
        {"id": "m-1", "queue": "q", "ids": [f"{n:x}" for n in range(1000)]},
        [b""] * 1000,
    )
    w.batch(
        "JOB_BATCH",
        "spec_example",
        "The JOB_BATCH example of SPEC.md.",
        {"id": "b7a1-5", "queue": "thumbs", "lease_ms": 60000, "ids": two},
        [b"cat.png", b"dog.png"],
    )
    w.batch(
        "JOB_BATCH",
        "with_headers",
        "JOB_BATCH with the producer's headers, shared by every job.",
        {"id": "b7a1-8", "queue": "thumbs", "lease_ms": 5000, "ids": two, "headers": {"size": 64}},
        [b"a", b"b"],
    )


def packed(w: Writer) -> None:
    two = [f"{ID}-1", f"{ID}-2"]
    w.packed(
        "PUSH_PACKED",
        "spec_example",
        "The PUSH_PACKED example of SPEC.md: two jobs, one header, one body frame.",
        {"id": f"{ID}-3", "queue": "thumbs", "ids": two},
        [b"cat.png", b"dog.png"],
    )
    w.packed(
        "PUSH_PACKED",
        "all_optional_fields",
        "PUSH_PACKED with a shared trace and headers.",
        {"id": f"{ID}-4", "queue": "thumbs", "ids": two, "trace": "t-1", "headers": {"size": 64}},
        [b"cat.png", b"dog.png"],
    )
    w.packed(
        "PUSH_PACKED",
        "one_job",
        "A packed message of one job is well formed.",
        {"id": f"{ID}-5", "queue": "thumbs", "ids": [f"{ID}-1"]},
        [b"x"],
    )
    w.packed(
        "PUSH_PACKED",
        "bodies_opaque",
        "Empty, binary and UTF-8 bodies cut from one frame, in order.",
        {"id": f"{ID}-6", "queue": "q", "ids": [f"{ID}-{n:x}" for n in range(7, 10)]},
        [b"", BINARY_BODY, UTF8_BODY],
    )
    w.packed(
        "PUSH_PACKED",
        "all_bodies_empty",
        "Every body empty: sizes of 0 and an empty body frame.",
        {"id": f"{ID}-c", "queue": "q", "ids": two},
        [b"", b""],
    )
    w.packed(
        "PUSH_PACKED",
        "unknown_field",
        "A field the receiver does not know is ignored (and decoded).",
        {"id": f"{ID}-a", "queue": "q", "ids": [f"{ID}-b"], "x-future": [1, 2]},
        [b"x"],
    )
    w.packed(
        "PUSH_PACKED",
        "thousand_jobs",
        "The most jobs one packed message may carry: 1000.",
        {"id": "m-1", "queue": "q", "ids": [f"{n:x}" for n in range(1000)]},
        [bytes((n % 256,)) for n in range(1000)],
    )
    w.packed(
        "PUSH_PACKED",
        "body_at_limit",
        "Each body at exactly the receiver's limit (max_body 4) is accepted.",
        {"id": f"{ID}-d", "queue": "q", "ids": two},
        [b"abcd", b"efgh"],
        max_body=4,
    )
    w.packed(
        "JOB_PACKED",
        "spec_example",
        "The JOB_PACKED example of SPEC.md.",
        {"id": "b7a1-5", "queue": "thumbs", "lease_ms": 60000, "ids": two},
        [b"cat.png", b"dog.png"],
    )
    w.packed(
        "JOB_PACKED",
        "with_headers",
        "JOB_PACKED with the producer's headers, shared by every job.",
        {"id": "b7a1-8", "queue": "thumbs", "lease_ms": 5000, "ids": two, "headers": {"size": 64}},
        [b"a", b"b"],
    )


def invalid(w: Writer) -> None:
    push = cmd("PUSH")
    ok = pack({"id": f"{ID}-1", "queue": "thumbs"})

    def push_with(header: dict) -> list[bytes]:
        return [push, pack(header), b"x"]

    def control(command: str, header: dict) -> list[bytes]:
        return [cmd(command), pack(header)]

    # Framing
    w.invalid("no_frames", "An empty message.", [], "bad_frame")
    w.invalid("command_frame_only", "A command frame and nothing else.", [cmd("HEARTBEAT")], "bad_frame")
    w.invalid("bad_signature", "Frame 0 starts with 'XM', not 'ZM'.", [b"XM\x01\x01", ok, b"x"], "bad_frame")
    w.invalid("command_frame_too_long", "A 5-byte command frame.", [cmd("PUSH") + b"\x00", ok, b"x"], "bad_frame")
    w.invalid("command_frame_too_short", "A 3-byte command frame.", [b"ZM\x01", ok, b"x"], "bad_frame")
    w.invalid("empty_command_frame", "Frame 0 is empty.", [b"", ok, b"x"], "bad_frame")
    w.invalid("bad_version_2", "Version byte 0x02.", [cmd("PUSH", version=2), ok, b"x"], "bad_version")
    w.invalid("bad_version_0", "Version byte 0x00.", [cmd("PUSH", version=0), ok, b"x"], "bad_version")
    w.invalid("unknown_command_7f", "Command byte 0x7f.", [b"ZM\x01\x7f", ok], "unknown_command")
    w.invalid("unknown_command_00", "Command byte 0x00.", [b"ZM\x01\x00", ok], "unknown_command")
    w.invalid("unknown_command_15", "Command byte 0x15, one past JOB_PACKED.", [b"ZM\x01\x15", ok], "unknown_command")
    pb = cmd("PUSH_BATCH")
    w.invalid(
        "batch_fewer_bodies_than_ids",
        "PUSH_BATCH naming two ids with one body frame.",
        [pb, pack({"id": "m", "queue": "q", "ids": ["a", "b"]}), b"x"],
        "bad_frame",
    )
    w.invalid(
        "batch_more_bodies_than_ids",
        "PUSH_BATCH naming one id with two body frames.",
        [pb, pack({"id": "m", "queue": "q", "ids": ["a"]}), b"x", b"y"],
        "bad_frame",
    )
    w.invalid(
        "batch_without_body",
        "PUSH_BATCH with a header and no body frame.",
        [pb, pack({"id": "m", "queue": "q", "ids": ["a"]})],
        "bad_frame",
    )
    w.invalid(
        "batch_empty_ids",
        "PUSH_BATCH with an empty ids list and one body.",
        [pb, pack({"id": "m", "queue": "q", "ids": []}), b"x"],
        "bad_frame",
    )
    w.invalid(
        "batch_repeated_id",
        "PUSH_BATCH naming the same job id twice.",
        [pb, pack({"id": "m", "queue": "q", "ids": ["a", "a"]}), b"x", b"y"],
        "bad_header",
    )
    w.invalid("batch_missing_ids", "PUSH_BATCH without ids.", [pb, pack({"id": "m", "queue": "q"}), b"x"], "bad_header")
    w.invalid(
        "batch_id_not_str",
        "PUSH_BATCH whose ids hold an int.",
        [pb, pack({"id": "m", "queue": "q", "ids": ["a", 2]}), b"x", b"y"],
        "bad_header",
    )
    w.invalid(
        "batch_too_many_bodies",
        "PUSH_BATCH with 1001 bodies.",
        [pb, pack({"id": "m", "queue": "q", "ids": [f"{n:x}" for n in range(1001)]})] + [b""] * 1001,
        "bad_frame",
    )
    w.invalid(
        "job_batch_missing_lease",
        "JOB_BATCH without lease_ms.",
        [cmd("JOB_BATCH"), pack({"id": "m", "queue": "q", "ids": ["a"]}), b"x"],
        "bad_header",
    )
    pp = cmd("PUSH_PACKED")

    def packed_header(ids: list, sizes: object, **more: Any) -> bytes:  # sizes of any type: invalid ones too
        return pack({"id": "m", "queue": "q", "ids": ids, "sizes": sizes, **more})

    w.invalid(
        "packed_without_body",
        "PUSH_PACKED with a header and no body frame.",
        [pp, packed_header(["a"], [1])],
        "bad_frame",
    )
    w.invalid(
        "packed_two_body_frames",
        "PUSH_PACKED with two body frames (the bodies go in one).",
        [pp, packed_header(["a", "b"], [1, 1]), b"x", b"y"],
        "bad_frame",
    )
    w.invalid(
        "packed_sizes_short",
        "PUSH_PACKED whose sizes add up to less than the body frame.",
        [pp, packed_header(["a", "b"], [1, 1]), b"xyz"],
        "bad_frame",
    )
    w.invalid(
        "packed_sizes_long",
        "PUSH_PACKED whose sizes add up to more than the body frame.",
        [pp, packed_header(["a", "b"], [2, 2]), b"xyz"],
        "bad_frame",
    )
    w.invalid(
        "packed_sizes_count",
        "PUSH_PACKED naming two ids and one size.",
        [pp, packed_header(["a", "b"], [2]), b"xy"],
        "bad_header",
    )
    w.invalid(
        "packed_missing_sizes",
        "PUSH_PACKED without sizes.",
        [pp, pack({"id": "m", "queue": "q", "ids": ["a"]}), b"x"],
        "bad_header",
    )
    w.invalid(
        "packed_size_negative",
        "PUSH_PACKED with a negative size.",
        [pp, packed_header(["a", "b"], [2, -1]), b"x"],
        "bad_header",
    )
    w.invalid(
        "packed_size_not_int",
        "PUSH_PACKED whose sizes hold a str.",
        [pp, packed_header(["a"], ["1"]), b"x"],
        "bad_header",
    )
    w.invalid(
        "packed_size_bool",
        "PUSH_PACKED whose sizes hold true (a bool is not an int).",
        [pp, packed_header(["a"], [True]), b"x"],
        "bad_header",
    )
    w.invalid(
        "packed_sizes_not_list", "PUSH_PACKED whose sizes is an int.", [pp, packed_header(["a"], 1), b"x"], "bad_header"
    )
    w.invalid(
        "packed_empty_ids",
        "PUSH_PACKED with no ids, no sizes and an empty body frame.",
        [pp, packed_header([], []), b""],
        "bad_header",
    )
    w.invalid(
        "packed_too_many_ids",
        "PUSH_PACKED naming 1001 jobs.",
        [pp, packed_header([f"{n:x}" for n in range(1001)], [0] * 1001), b""],
        "bad_header",
    )
    w.invalid(
        "packed_repeated_id",
        "PUSH_PACKED naming the same job id twice.",
        [pp, packed_header(["a", "a"], [1, 1]), b"xy"],
        "bad_header",
    )
    w.invalid(
        "packed_body_too_large",
        "PUSH_PACKED whose second body is over the receiver's limit (max_body 4).",
        [pp, packed_header(["a", "b"], [4, 5]), b"abcdefghi"],
        "too_large",
        max_body=4,
    )
    w.invalid(
        "job_packed_missing_lease",
        "JOB_PACKED without lease_ms.",
        [cmd("JOB_PACKED"), packed_header(["a"], [1]), b"x"],
        "bad_header",
    )
    w.invalid(
        "confirm_batches_not_list",
        "CONFIRM whose batches is a str.",
        control("CONFIRM", {"id": "c", "ids": [], "batches": "m"}),
        "bad_header",
    )
    w.invalid("item_header_without_body", "PUSH with a header and no body frame.", [push, ok], "bad_frame")
    w.invalid(
        "odd_item_frames",
        "PUSH with header, body, header: an odd number of item frames.",
        [push, ok, b"x", pack({"id": f"{ID}-2", "queue": "thumbs"})],
        "bad_frame",
    )
    w.invalid(
        "control_extra_frame",
        "HEARTBEAT followed by a body frame: control commands have one header only.",
        [cmd("HEARTBEAT"), pack({"id": "h-1"}), b""],
        "bad_frame",
    )
    w.invalid(
        "control_two_headers",
        "ACK with two header frames.",
        [cmd("ACK"), pack({"id": "a-1", "ids": ["j"]}), pack({"id": "a-2", "ids": ["k"]})],
        "bad_frame",
    )
    items = []
    for n in range(1, 1002):
        items += [pack({"id": f"{n:x}", "queue": "q"}), b""]
    w.invalid("too_many_items", "1001 items in one PUSH: the limit is 1000.", [push] + items, "bad_frame")

    # Header encoding
    w.invalid(
        "header_not_msgpack", "Header frame is 0xc1, a byte msgpack never uses.", [push, b"\xc1", b"x"], "bad_header"
    )
    w.invalid("header_truncated", "Header frame is a map cut short.", [push, ok[:-3], b"x"], "bad_header")
    w.invalid(
        "header_trailing_bytes", "Header frame has bytes after the map.", [push, ok + b"\x00", b"x"], "bad_header"
    )
    w.invalid("header_empty", "Header frame is empty.", [push, b"", b"x"], "bad_header")
    w.invalid("header_is_array", "Header is a msgpack array, not a map.", [push, pack(["id", "x"]), b"x"], "bad_header")
    w.invalid("header_is_string", "Header is a msgpack str, not a map.", [cmd("HEARTBEAT"), pack("id")], "bad_header")
    w.invalid("header_is_nil", "Header is msgpack nil.", [cmd("HEARTBEAT"), b"\xc0"], "bad_header")
    w.invalid(
        "header_too_large",
        "A header of 65537 bytes (an unknown field pads it): the limit is 65536.",
        [cmd("HEARTBEAT"), _padded_header(65537)],
        "bad_header",
    )
    w.invalid(
        "key_int", "A header map with an integer key.", [cmd("HEARTBEAT"), b"\x82\xa2id\xa3h-1\x01\xa1x"], "bad_header"
    )
    w.invalid(
        "key_bin",
        "A header map with a bin key (strings must be msgpack str, not bin).",
        [cmd("HEARTBEAT"), b"\x82\xa2id\xa3h-1\xc4\x01k\xa1x"],
        "bad_header",
    )
    w.invalid(
        "key_bin_nested",
        "A bin key inside the 'headers' map.",
        push_with({"id": f"{ID}-1", "queue": "thumbs", "headers": {b"k": "v"}}),
        "bad_header",
    )
    w.invalid(
        "key_bin_deep",
        "A bin key in a map nested inside an unknown field: keys are str at every depth.",
        push_with({"id": f"{ID}-1", "queue": "thumbs", "x": {"y": {b"k": 1}}}),
        "bad_header",
    )
    w.invalid(
        "key_repeated",
        "The key 'queue' appears twice in one map.",
        [push, b"\x83\xa2id\xa1j\xa5queue\xa1a\xa5queue\xa1b", b"x"],
        "bad_header",
    )
    w.invalid(
        "invalid_utf8_in_field",
        "The queue name is a msgpack str holding invalid UTF-8 (0xff 0xfe).",
        [push, b"\x82\xa2id\xa1j\xa5queue\xa2\xff\xfe", b"x"],
        "bad_header",
    )
    w.invalid(
        "invalid_utf8_in_unknown_field",
        "Invalid UTF-8 in a str is refused even in a field the receiver does not know.",
        [push, b"\x83\xa2id\xa1j\xa5queue\xa1q\xa1x\xa1\xc3", b"x"],
        "bad_header",
    )
    w.invalid(
        "invalid_utf8_in_key",
        "A map key that is not valid UTF-8.",
        [cmd("HEARTBEAT"), b"\x82\xa2id\xa3h-1\xa1\x80\x01"],
        "bad_header",
    )

    # Required fields
    w.invalid("missing_id", "HEARTBEAT without its id.", control("HEARTBEAT", {"epoch": "e"}), "bad_header")
    w.invalid("push_missing_queue", "PUSH without queue.", push_with({"id": f"{ID}-1"}), "bad_header")
    w.invalid(
        "job_missing_lease_ms",
        "JOB without lease_ms.",
        [cmd("JOB"), pack({"id": "j", "queue": "q", "attempt": 1, "trace": "t"}), b""],
        "bad_header",
    )
    w.invalid(
        "request_missing_timeout_ms",
        "REQUEST without timeout_ms.",
        [cmd("REQUEST"), pack({"id": "r", "service": "s"}), b""],
        "bad_header",
    )
    w.invalid("reply_missing_re", "REPLY without re.", [cmd("REPLY"), pack({"id": "r"}), b""], "bad_header")
    w.invalid(
        "ready_missing_credit", "READY without credit.", control("READY", {"id": "w", "names": ["q"]}), "bad_header"
    )
    w.invalid("ack_missing_ids", "ACK without ids.", control("ACK", {"id": "a"}), "bad_header")
    w.invalid("nack_missing_error", "NACK without error.", control("NACK", {"id": "n", "re": "j"}), "bad_header")
    w.invalid("error_missing_code", "ERROR without code.", control("ERROR", {"id": "e", "message": "m"}), "bad_header")
    w.invalid(
        "error_missing_message",
        "ERROR without message.",
        control("ERROR", {"id": "e", "code": "timeout"}),
        "bad_header",
    )
    w.invalid("confirm_missing_ids", "CONFIRM without ids.", control("CONFIRM", {"id": "c"}), "bad_header")
    w.invalid(
        "extend_missing_lease_ms",
        "EXTEND without lease_ms.",
        control("EXTEND", {"id": "x", "ids": ["j"]}),
        "bad_header",
    )
    w.invalid("cancel_missing_re", "CANCEL without re.", control("CANCEL", {"id": "c"}), "bad_header")
    w.invalid("admin_missing_op", "ADMIN without op.", control("ADMIN", {"id": "a"}), "bad_header")
    w.invalid("publish_missing_topic", "PUBLISH without topic.", [cmd("PUBLISH"), pack({"id": "p"}), b""], "bad_header")
    w.invalid(
        "required_field_nil",
        "A required field that is nil is missing.",
        push_with({"id": f"{ID}-1", "queue": None}),
        "bad_header",
    )
    w.invalid(
        "batch_second_item_bad",
        "A batch whose second header lacks queue: the whole message is refused.",
        [push, ok, b"x", pack({"id": f"{ID}-2"}), b"y"],
        "bad_header",
    )

    # Field types
    w.invalid(
        "credit_as_string",
        'CREDIT with credit "5" (str, not int).',
        control("CREDIT", {"id": "c", "credit": "5"}),
        "bad_header",
    )
    w.invalid(
        "attempt_negative",
        "JOB with attempt -1.",
        [cmd("JOB"), pack({"id": "j", "queue": "q", "attempt": -1, "trace": "t", "lease_ms": 1}), b""],
        "bad_header",
    )
    w.invalid(
        "bool_as_int",
        "REQUEST with timeout_ms true: a bool is not an int.",
        [cmd("REQUEST"), pack({"id": "r", "service": "s", "timeout_ms": True}), b""],
        "bad_header",
    )
    w.invalid(
        "int_as_bool",
        "NACK with retry 1: an int is not a bool.",
        control("NACK", {"id": "n", "re": "j", "error": "e", "retry": 1}),
        "bad_header",
    )
    w.invalid(
        "float_as_int",
        "READY with credit 1.0: a float is not an int.",
        control("READY", {"id": "w", "names": ["q"], "credit": 1.0}),
        "bad_header",
    )
    w.invalid(
        "bin_as_str",
        "PUSH whose queue is msgpack bin, not str.",
        push_with({"id": f"{ID}-1", "queue": b"thumbs"}),
        "bad_header",
    )
    w.invalid("int_as_str", "PUSH whose id is an integer.", push_with({"id": 1, "queue": "thumbs"}), "bad_header")
    w.invalid(
        "optional_wrong_type",
        "PUSH whose optional trace is an integer.",
        push_with({"id": f"{ID}-1", "queue": "thumbs", "trace": 7}),
        "bad_header",
    )
    w.invalid(
        "headers_not_map",
        "PUSH whose headers is a list.",
        push_with({"id": f"{ID}-1", "queue": "thumbs", "headers": ["a", "b"]}),
        "bad_header",
    )
    w.invalid(
        "args_not_map",
        "ADMIN whose args is a str.",
        control("ADMIN", {"id": "a", "op": "status", "args": "x"}),
        "bad_header",
    )
    w.invalid("ids_not_list", "ACK whose ids is a single str.", control("ACK", {"id": "a", "ids": "j"}), "bad_header")
    w.invalid(
        "ids_with_int", "ACK whose ids holds an integer.", control("ACK", {"id": "a", "ids": ["j", 2]}), "bad_header"
    )
    w.invalid(
        "names_with_empty",
        "READY whose names holds an empty string.",
        control("READY", {"id": "w", "names": ["q", ""], "credit": 1}),
        "bad_header",
    )
    w.invalid(
        "names_element_too_long",
        "READY whose names holds a 256-byte name.",
        control("READY", {"id": "w", "names": ["q" * 256], "credit": 1}),
        "bad_header",
    )
    w.invalid(
        "ids_element_too_long",
        "ACK whose ids holds a 256-byte id.",
        control("ACK", {"id": "a", "ids": ["j" * 256]}),
        "bad_header",
    )

    # Lengths of names and ids
    w.invalid("empty_id", "PUSH with an empty id.", push_with({"id": "", "queue": "thumbs"}), "bad_header")
    w.invalid("empty_queue", "PUSH with an empty queue name.", push_with({"id": f"{ID}-1", "queue": ""}), "bad_header")
    w.invalid(
        "id_256_bytes",
        "PUSH whose id is 256 bytes long.",
        push_with({"id": "j" * 256, "queue": "thumbs"}),
        "bad_header",
    )
    w.invalid(
        "queue_256_bytes_multibyte",
        "A queue name of 128 two-byte characters: 256 bytes, over the limit.",
        push_with({"id": f"{ID}-1", "queue": "é" * 128}),
        "bad_header",
    )
    w.invalid(
        "re_256_bytes",
        "CANCEL whose re is 256 bytes long.",
        control("CANCEL", {"id": "c", "re": "r" * 256}),
        "bad_header",
    )
    w.invalid(
        "empty_trace",
        "PUSH with an empty trace (trace is bounded like ids).",
        push_with({"id": f"{ID}-1", "queue": "thumbs", "trace": ""}),
        "bad_header",
    )

    # Body size: depends on the receiver's limit, given as max_body.
    w.invalid(
        "body_too_large",
        "A 17-byte body where the receiver's limit (max_body) is 16 bytes.",
        [push, ok, b"0123456789abcdefg"],
        "too_large",
        max_body=16,
    )


def _padded_header(size: int) -> bytes:
    """A valid HEARTBEAT header of exactly `size` bytes, padded with a str8/16 field 'p'."""
    base = pack({"id": "h-1", "p": ""})
    for pad in range(size, 0, -1):
        raw = pack({"id": "h-1", "p": "x" * pad})
        if len(raw) == size:
            return raw
        if len(raw) < size:
            break
    raise AssertionError(f"cannot pad a header to {size} bytes (base {len(base)})")


def events(w: Writer) -> None:
    ev = {"id": f"{ID}-3", "topic": "news.sports", "seq": 1, "epoch": "3b9f0c2d"}
    w.event(
        "spec_example",
        "The event example of SPEC.md: PUBLISH as the broker sends it on PUB.",
        "news.sports",
        ev,
        b"goal!",
    )
    w.event(
        "with_headers",
        "An event with the publisher's headers.",
        "news.sports",
        {**ev, "seq": 42, "headers": {"lang": "en"}},
        b"goal!",
    )
    w.event("empty_body", "An event with an empty body.", "news.sports", {**ev, "seq": 2}, b"")
    w.event(
        "utf8_topic",
        "A non-ASCII topic: frame 0 is its UTF-8 bytes.",
        "nouvelles.été",
        {**ev, "topic": "nouvelles.été", "seq": 7},
        UTF8_BODY,
    )
    w.event(
        "unknown_fields",
        "Unknown fields in an event header are ignored.",
        "t",
        {"id": "p-1", "topic": "t", "seq": 1, "epoch": "e", "x-future": [1, 2]},
        b"\x00",
    )

    good = pack(ev)
    w.bad_event("two_frames", "Topic and header but no body frame.", [b"news.sports", good], "bad_frame")
    w.bad_event("four_frames", "An extra frame after the body.", [b"news.sports", good, b"", b""], "bad_frame")
    w.bad_event("topic_not_utf8", "The topic frame is not valid UTF-8.", [b"news\xff", good, b""], "bad_frame")
    w.bad_event(
        "topic_mismatch", "The topic frame and the header's topic differ.", [b"news.weather", good, b""], "bad_header"
    )
    w.bad_event(
        "missing_seq",
        "An event header without seq.",
        [b"news.sports", pack({k: v for k, v in ev.items() if k != "seq"}), b""],
        "bad_header",
    )
    w.bad_event(
        "missing_epoch",
        "An event header without epoch.",
        [b"news.sports", pack({k: v for k, v in ev.items() if k != "epoch"}), b""],
        "bad_header",
    )
    w.bad_event("header_not_msgpack", "The header frame is not msgpack.", [b"news.sports", b"\xc1", b""], "bad_header")
    w.bad_event(
        "empty_topic", "An empty topic (names are 1..255 bytes).", [b"", pack({**ev, "topic": ""}), b""], "bad_header"
    )
    w.bad_event("broker_frame", "A broker-endpoint message is not an event.", [cmd("PUBLISH"), good, b""], "bad_header")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write into (default: beside this script)")
    args = parser.parse_args(argv)
    for sub in ("valid", "invalid", "events"):  # drop stale vectors, nothing else
        shutil.rmtree(args.out / sub, ignore_errors=True)
    w = Writer(args.out)
    valid(w)
    batches(w)
    packed(w)
    invalid(w)
    events(w)
    print(f"wrote {w.count} vectors under {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
