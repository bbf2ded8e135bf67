# SPDX-License-Identifier: MIT
"""What every vector table shares: the wire constants (copied from SPEC.md on purpose, not
imported from the codec), the packing helpers and the Writer that lays the JSON files out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack

HERE = Path(__file__).resolve().parent.parent / "vectors"

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


def padded_header(size: int) -> bytes:
    """A valid HEARTBEAT header of exactly `size` bytes, padded with a str8/16 field 'p'."""
    base = pack({"id": "h-1", "p": ""})
    for pad in range(size, 0, -1):
        raw = pack({"id": "h-1", "p": "x" * pad})
        if len(raw) == size:
            return raw
        if len(raw) < size:
            break
    raise AssertionError(f"cannot pad a header to {size} bytes (base {len(base)})")
