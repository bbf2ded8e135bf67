# SPDX-License-Identifier: MIT
"""Messages <-> frames on the broker and PUB endpoints (SPEC.md sections 3 and 7).

A message on the broker endpoint is a list of frames:

    frame 0      command frame: b"ZM", version byte, command byte
    frame 1..    item commands: (header, body) pairs, one or more
                 batch commands: one header, then one body per id in its `ids`
                 packed commands: one header with `sizes`, then the bodies in one frame
                 control commands: exactly one header

A header is a msgpack map with string keys (decoded and checked by `strict`); a body
is opaque bytes that the broker never decodes. Messages on the PUB endpoint are
[topic, header, body].
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any, NoReturn

import msgpack

from . import wire
from .errors import ProtocolError
from .strict import unpack_header


class Envelope:
    """A decoded message. `header` is the first (or only) header.

    `items` is a list of (header, body) pairs for item commands, the list of
    bodies for batch and packed commands (one per id in `header["ids"]`), else empty.
    """

    __slots__ = ("command", "header", "items")

    def __init__(self, command: int, header: dict, items: list[Any]) -> None:
        self.command = command
        self.header = header
        self.items = items

    @property
    def name(self) -> str:
        return wire.COMMAND_NAMES[self.command]

    def __repr__(self) -> str:
        return f"Envelope({self.name}, {self.header!r}, items={len(self.items)})"


def command_frame(command: int) -> bytes:
    return bytes((0x5A, 0x4D, wire.VERSION, command))


_COMMAND_FRAMES = {code: command_frame(code) for code in wire.COMMAND_NAMES}
_COMMAND_OF = {frame: code for code, frame in _COMMAND_FRAMES.items()}
_packb = msgpack.Packer(use_bin_type=True).pack  # one Packer, reused: msgpack.packb builds one per call


# -- packing ------------------------------------------------------------------


def pack_header(header: dict) -> bytes:
    return _packb(header)


def pack_control(command: int, header: dict) -> list[bytes]:
    """Frames of a control command (one header, no body)."""
    return [_COMMAND_FRAMES[command], _packb(header)]


def pack_items(command: int, items: Iterable[tuple[dict, bytes]]) -> list[bytes]:
    """Frames of an item command carrying one or more (header, body) pairs."""
    frames = [_COMMAND_FRAMES[command]]
    for header, body in items:
        frames.append(_packb(header))
        frames.append(body)
    return frames


def pack_item(command: int, header: dict, body: bytes) -> list[bytes]:
    return [_COMMAND_FRAMES[command], _packb(header), body]


def pack_batch(command: int, header: dict, bodies: list[bytes]) -> list[bytes]:
    """Frames of a batch command: one header whose `ids` name the bodies, in order."""
    return [_COMMAND_FRAMES[command], _packb(header), *bodies]


def pack_packed(command: int, header: dict, bodies: list[bytes]) -> list[bytes]:
    """Frames of a packed command: the header plus `sizes`, and the bodies back to back in one frame.

    Raises ValueError past wire.MAX_PACKED_BYTES, which every receiver refuses (SPEC 3.5):
    send such bodies as a batch instead.
    """
    packed = b"".join(bodies)
    if len(packed) > wire.MAX_PACKED_BYTES:
        raise ValueError(f"packed bodies of {len(packed)} bytes exceed {wire.MAX_PACKED_BYTES}; send them as a batch")
    return [_COMMAND_FRAMES[command], _packb({**header, "sizes": [len(b) for b in bodies]}), packed]


def pack_event(topic: str, header: dict, body: bytes) -> list[bytes]:
    """Frames on the PUB endpoint: the topic first, so a plain SUB can filter."""
    return [topic.encode(), _packb(header), body]


# -- unpacking ----------------------------------------------------------------


def unpack(frames: list[bytes], max_body: int | None = None) -> Envelope:
    """Decode a message from the broker endpoint (routing identity removed).

    Raises ProtocolError with a protocol error code for anything malformed.
    """
    n = len(frames)
    if n < 2:
        raise ProtocolError(wire.E_BAD_FRAME, f"message has {n} frame(s); need a command frame and a header")
    command = _COMMAND_OF.get(frames[0])  # a valid command frame, in one lookup
    if command is None:
        _refuse_command_frame(frames[0])
    if n == 3 and command in wire.ITEM_COMMANDS:  # one item: most requests and replies
        body = frames[2]
        if max_body is not None and len(body) > max_body:
            raise ProtocolError(wire.E_TOO_LARGE, f"body of {len(body)} bytes exceeds the limit of {max_body}")
        header = unpack_header(frames[1], command)
        return Envelope(command, header, [(header, body)])
    if command in wire.ITEM_COMMANDS:
        count = len(frames) - 1
        if count % 2:
            raise ProtocolError(
                wire.E_BAD_FRAME, f"{wire.COMMAND_NAMES[command]} needs (header, body) pairs, got {count} frames"
            )
        if count // 2 > wire.MAX_ITEMS_PER_MESSAGE:
            raise ProtocolError(wire.E_BAD_FRAME, f"more than {wire.MAX_ITEMS_PER_MESSAGE} items in one message")
        items = []
        for i in range(1, len(frames), 2):
            body = frames[i + 1]
            if max_body is not None and len(body) > max_body:
                raise ProtocolError(wire.E_TOO_LARGE, f"body of {len(body)} bytes exceeds the limit of {max_body}")
            items.append((unpack_header(frames[i], command), body))
        return Envelope(command, items[0][0], items)
    if command in wire.BATCH_COMMANDS:
        return _unpack_batch(frames, command, max_body)
    if command in wire.PACKED_COMMANDS:
        return _unpack_packed(frames, command, max_body)
    if len(frames) != 2:
        raise ProtocolError(
            wire.E_BAD_FRAME, f"{wire.COMMAND_NAMES[command]} takes exactly one header frame, got {len(frames) - 1}"
        )
    return Envelope(command, unpack_header(frames[1], command), [])


def _refuse_command_frame(head: Any) -> NoReturn:
    """Raise the precise error for a frame 0 that is not a known command frame."""
    head = bytes(head)
    if len(head) != 4 or head[0] != 0x5A or head[1] != 0x4D:
        raise ProtocolError(wire.E_BAD_FRAME, "frame 0 is not a ZM command frame")
    if head[2] != wire.VERSION:
        raise ProtocolError(wire.E_BAD_VERSION, f"protocol version {head[2]} not supported (want {wire.VERSION})")
    raise ProtocolError(wire.E_UNKNOWN_COMMAND, f"unknown command 0x{head[3]:02x}")


def _unpack_batch(frames: list[bytes], command: int, max_body: int | None) -> Envelope:
    name = wire.COMMAND_NAMES[command]
    bodies = frames[2:]
    if not bodies:
        raise ProtocolError(wire.E_BAD_FRAME, f"{name} needs a header and at least one body frame")
    if len(bodies) > wire.MAX_ITEMS_PER_MESSAGE:
        raise ProtocolError(wire.E_BAD_FRAME, f"more than {wire.MAX_ITEMS_PER_MESSAGE} bodies in one message")
    header = unpack_header(frames[1], command)
    ids = header["ids"]
    if len(ids) != len(bodies):
        raise ProtocolError(wire.E_BAD_FRAME, f"{name} names {len(ids)} id(s) for {len(bodies)} body frame(s)")
    if len(set(ids)) != len(ids):
        raise ProtocolError(wire.E_BAD_HEADER, f"{name} repeats a job id")
    if max_body is not None:
        for body in bodies:
            if len(body) > max_body:
                raise ProtocolError(wire.E_TOO_LARGE, f"body of {len(body)} bytes exceeds the limit of {max_body}")
    return Envelope(command, header, bodies)


def _unpack_packed(frames: list[bytes], command: int, max_body: int | None) -> Envelope:
    """SPEC section 3.5: one header, one frame of bodies back to back, cut by `sizes`."""
    name = wire.COMMAND_NAMES[command]
    if len(frames) != 3:
        raise ProtocolError(
            wire.E_BAD_FRAME, f"{name} takes a header and exactly one body frame, got {len(frames) - 1} frame(s)"
        )
    header = unpack_header(frames[1], command)
    ids = header["ids"]
    sizes = header["sizes"]
    if not ids or len(ids) > wire.MAX_ITEMS_PER_MESSAGE:
        raise ProtocolError(wire.E_BAD_HEADER, f"{name} needs 1 to {wire.MAX_ITEMS_PER_MESSAGE} ids, got {len(ids)}")
    if len(sizes) != len(ids):
        raise ProtocolError(wire.E_BAD_HEADER, f"{name} names {len(ids)} id(s) and {len(sizes)} size(s)")
    if len(set(ids)) != len(ids):
        raise ProtocolError(wire.E_BAD_HEADER, f"{name} repeats a job id")
    blob = frames[2]
    if len(blob) > wire.MAX_PACKED_BYTES:
        raise ProtocolError(wire.E_TOO_LARGE, f"{name} body frame of {len(blob)} bytes exceeds {wire.MAX_PACKED_BYTES}")
    ends = list(itertools.accumulate(sizes))
    if ends[-1] != len(blob):
        raise ProtocolError(
            wire.E_BAD_FRAME, f"{name} sizes add up to {ends[-1]} bytes, the body frame has {len(blob)}"
        )
    if max_body is not None and max(sizes) > max_body:
        raise ProtocolError(wire.E_TOO_LARGE, f"body of {max(sizes)} bytes exceeds the limit of {max_body}")
    if type(blob) is not bytes:
        blob = bytes(blob)
    return Envelope(command, header, [blob[start:end] for start, end in zip([0, *ends], ends)])


def unpack_event(frames: list[bytes]) -> tuple[str, dict, bytes]:
    """Decode a message received on a SUB socket from the PUB endpoint."""
    if len(frames) != 3:
        raise ProtocolError(wire.E_BAD_FRAME, f"event has {len(frames)} frame(s); need topic, header, body")
    try:
        topic = frames[0].decode()
    except UnicodeDecodeError:
        raise ProtocolError(wire.E_BAD_FRAME, "topic is not UTF-8") from None
    header = unpack_header(frames[1], wire.PUBLISH)
    # Optional in a client's PUBLISH, but the broker always stamps them on an
    # event: without them a subscriber cannot see a gap or a broker restart.
    for field in ("seq", "epoch"):
        if header.get(field) is None:
            raise ProtocolError(wire.E_BAD_HEADER, f"event header lacks '{field}'")
    if header["topic"] != topic:
        raise ProtocolError(wire.E_BAD_HEADER, "topic frame and header topic differ")
    return topic, header, frames[2]
