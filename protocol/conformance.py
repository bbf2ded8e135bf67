# SPDX-License-Identifier: MIT
"""ZMSH/1 conformance driver for the Python codec.

Contract (protocol/vectors/README.md): read one vector JSON object on stdin;
for input the codec accepts, print the decoded JSON (the shape of the
vector's "decoded") and exit 0; for input it refuses, print the protocol
error code and exit 1. Anything else (not JSON, no frames_hex) exits 2.

    python -m zeromesh.protocol.conformance < protocol/vectors/valid/push/minimal.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

import msgpack

from . import codec, wire
from .errors import ProtocolError


def to_json(value: Any) -> Any:
    """Map a decoded msgpack value to JSON: bin -> {"$bin": hex}, ext -> {"$ext": [type, hex]}."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, msgpack.Timestamp):  # ext type -1, which msgpack-python decodes itself
        return {"$ext": [-1, value.to_bytes().hex()]}
    if isinstance(value, msgpack.ExtType):
        return {"$ext": [value.code, value.data.hex()]}
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json(item) for item in value]
    return value


def decode(vector: dict) -> dict:
    """Decode a vector's frames with the codec. Raises ProtocolError for invalid input."""
    frames = [bytes.fromhex(frame) for frame in vector["frames_hex"]]
    if vector.get("endpoint", "broker") == "pub":
        topic, header, body = codec.unpack_event(frames)
        return {"topic": topic, "header": to_json(header), "body_hex": body.hex()}
    envelope = codec.unpack(frames, max_body=vector.get("max_body"))
    if envelope.command in wire.ITEM_COMMANDS:
        return {
            "command": envelope.name,
            "items": [{"header": to_json(header), "body_hex": body.hex()} for header, body in envelope.items],
        }
    if envelope.command in wire.BATCH_COMMANDS or envelope.command in wire.PACKED_COMMANDS:
        return {
            "command": envelope.name,
            "header": to_json(envelope.header),
            "bodies_hex": [body.hex() for body in envelope.items],
        }
    return {"command": envelope.name, "header": to_json(envelope.header)}


def main() -> int:
    try:
        vector = json.load(sys.stdin)
        decoded = decode(vector)
    except ProtocolError as exc:
        print(exc.code)
        return 1
    except Exception as exc:  # not a vector, or a bug here: status 1 would read as "refused"
        print(f"conformance driver failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    json.dump(decoded, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
