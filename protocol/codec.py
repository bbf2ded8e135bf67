# SPDX-License-Identifier: MIT
"""Bytes <-> messages for ZMSH/1. The only code that builds or parses frames.

A message on the broker endpoint is a list of frames:

    frame 0      command frame: b"ZM", version byte, command byte
    frame 1..    item commands: (header, body) pairs, one or more
                 control commands: exactly one header

A header is a msgpack map with string keys; a body is opaque bytes that the
broker never decodes. Messages on the PUB endpoint are [topic, header, body].
"""
from __future__ import annotations

import itertools
import os
from typing import Any, Iterable

import msgpack

from . import wire
from .errors import ProtocolError

_STR = "str"
_INT = "int"
_BOOL = "bool"
_MAP = "map"
_STRLIST = "strlist"
_INTLIST = "intlist"

# command -> (required fields, optional fields), each {name: type}
SCHEMAS: dict[int, tuple[dict[str, str], dict[str, str]]] = {
    wire.PUSH: ({"id": _STR, "queue": _STR}, {"trace": _STR, "headers": _MAP}),
    wire.CONFIRM: ({"id": _STR, "ids": _STRLIST}, {"batches": _STRLIST}),
    wire.JOB: (
        {"id": _STR, "queue": _STR, "attempt": _INT, "trace": _STR, "lease_ms": _INT},
        {"error": _STR, "headers": _MAP},
    ),
    wire.ACK: ({"id": _STR, "ids": _STRLIST}, {}),
    wire.NACK: ({"id": _STR, "re": _STR, "error": _STR}, {"retry": _BOOL}),
    wire.REQUEST: (
        {"id": _STR, "service": _STR, "timeout_ms": _INT},
        {"trace": _STR, "wait": _BOOL, "headers": _MAP, "attempt": _INT, "error": _STR},
    ),
    wire.REPLY: ({"id": _STR, "re": _STR}, {"headers": _MAP}),
    wire.ERROR: (
        {"id": _STR, "code": _STR, "message": _STR},
        {"re": _STR, "name": _STR, "traceback": _STR},
    ),
    wire.PUBLISH: ({"id": _STR, "topic": _STR}, {"headers": _MAP, "seq": _INT, "epoch": _STR}),
    wire.READY: ({"id": _STR, "names": _STRLIST, "credit": _INT},
                 {"label": _STR, "lang": _STR, "batch": _BOOL, "packed": _BOOL}),
    wire.CREDIT: ({"id": _STR, "credit": _INT}, {}),
    wire.HEARTBEAT: ({"id": _STR}, {"epoch": _STR, "re": _STR}),
    wire.DISCONNECT: ({"id": _STR}, {"reason": _STR}),
    wire.EXTEND: ({"id": _STR, "ids": _STRLIST, "lease_ms": _INT}, {}),
    wire.CANCEL: ({"id": _STR, "re": _STR}, {}),
    wire.ADMIN: ({"id": _STR, "op": _STR}, {"args": _MAP}),
    wire.PUSH_BATCH: ({"id": _STR, "queue": _STR, "ids": _STRLIST}, {"trace": _STR, "headers": _MAP}),
    wire.JOB_BATCH: ({"id": _STR, "queue": _STR, "lease_ms": _INT, "ids": _STRLIST}, {"headers": _MAP}),
    wire.PUSH_PACKED: ({"id": _STR, "queue": _STR, "ids": _STRLIST, "sizes": _INTLIST},
                       {"trace": _STR, "headers": _MAP}),
    wire.JOB_PACKED: ({"id": _STR, "queue": _STR, "lease_ms": _INT, "ids": _STRLIST, "sizes": _INTLIST},
                      {"headers": _MAP}),
}

# Fields that name things or identify messages are bounded in length.
_BOUNDED = frozenset({"id", "re", "queue", "service", "topic", "trace"})


class Envelope:
    """A decoded message. `header` is the first (or only) header.

    `items` is a list of (header, body) pairs for item commands, the list of
    bodies for batch and packed commands (one per id in `header["ids"]`), else empty.
    """

    __slots__ = ("command", "header", "items")

    def __init__(self, command: int, header: dict, items: list[tuple[dict, bytes]]) -> None:
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
_packb = msgpack.Packer(use_bin_type=True).pack


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
        raise ValueError(f"packed bodies of {len(packed)} bytes exceed {wire.MAX_PACKED_BYTES}; "
                         "send them as a batch")
    return [_COMMAND_FRAMES[command], _packb({**header, "sizes": [len(b) for b in bodies]}), packed]


def _map_from_pairs(pairs: list[tuple[Any, Any]]) -> dict:
    """Build one decoded map, refusing what msgpack allows but ZMSH/1 does not.

    msgpack's strict_map_key still lets bin keys through, and a repeated key
    silently keeps the last value, where another language's decoder may keep
    the first: both would make two receivers read one header differently.
    """
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ProtocolError(wire.E_BAD_HEADER, "map has a repeated key")
    for key in result:
        if type(key) is not str:
            raise ProtocolError(wire.E_BAD_HEADER, f"map key {key!r} is not a string")
    return result


_unpackb = msgpack.unpackb


def _flat_with_str_keys(header: dict) -> bool:
    # set(map(type, ...)) runs in C: a few builtin calls instead of a Python loop per field.
    if not _STR_ONLY.issuperset(map(type, header)):
        return False
    kinds = set(map(type, header.values()))
    if dict in kinds:
        return False
    if list in kinds:
        # An id list of a batch costs ~15 ns an element this way, not ~60.
        for value in header.values():
            if type(value) is list and value and not _FLAT_TYPES.issuperset(map(type, value)):
                return False
    return True


_FLAT_TYPES = frozenset({str, int, float, bool, bytes, type(None), msgpack.ExtType, msgpack.Timestamp})


def _canonical_without_bin(header: dict, raw: bytes) -> bool:
    """The check for nested headers (an HTTP request's headers, a reply's cache tags) at C speed.

    Decoded with msgpack's strict_map_key, every key is a str or came from a bin; with
    no bin marker byte anywhere in `raw`, none did (a marker byte inside a string only
    sends us the strict way). And if encoding what we decoded gives back exactly `raw`,
    no map anywhere repeated a key: the repeat would be missing from the re-encoding.
    Valid headers not encoded the way msgpack-python encodes them (a float32, a str8
    where a fixstr fits) take the strict path too.
    """
    if b"\xc4" in raw or b"\xc5" in raw or b"\xc6" in raw:
        return False
    try:
        return _packb(header) == raw
    except (ValueError, TypeError):  # something the packer cannot re-encode, or nesting too deep for it
        return False


def _declared_size(raw: bytes) -> int:
    """The entry count a msgpack map header declares (-1 if raw is not a map)."""
    first = raw[0] if raw else 0
    if 0x80 <= first <= 0x8F:
        return first & 0x0F
    if first == 0xDE and len(raw) >= 3:
        return int.from_bytes(raw[1:3], "big")
    if first == 0xDF and len(raw) >= 5:
        return int.from_bytes(raw[1:5], "big")
    return -1


def unpack_header(raw: bytes, command: int) -> dict:
    """Decode and check one header frame against the command's schema."""
    if len(raw) > wire.MAX_HEADER_BYTES:
        raise ProtocolError(wire.E_BAD_HEADER, f"header of {len(raw)} bytes exceeds {wire.MAX_HEADER_BYTES}")
    try:
        try:
            header = _unpackb(raw, raw=False)  # strict_map_key: keys are str or bytes, or ValueError
        except ValueError:
            header = None  # another key type, or not msgpack: the strict decode below says which
        # Fast paths (no pairs hook, 4x cheaper): a flat map whose keys are all strings and
        # whose declared size matches, so no key was repeated; or a nested one that passes
        # _canonical_without_bin. Anything else is decoded again with the strict hook,
        # which finds bin keys and repeats at any depth.
        if not (type(header) is dict and (
                _flat_with_str_keys(header) and _declared_size(raw) == len(header)
                or _canonical_without_bin(header, raw))):
            header = _unpackb(raw, raw=False, object_pairs_hook=_map_from_pairs)
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(wire.E_BAD_HEADER, f"header is not valid msgpack: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError(wire.E_BAD_HEADER, f"header is a {type(header).__name__}, not a map")
    if not _FAST_CHECKS[command](header):
        check_header(command, header)  # the precise checks: raise with the reason, or accept
    return header


def surely_valid(command: int, header: dict) -> bool:
    """True only if a receiver will accept this header as built (a sender's check before it batches).

    The fast per-command type tests, plus str keys at every depth (a bytes key would be
    packed as bin, which receivers refuse). False means "not sure", not "invalid".
    """
    return _FAST_CHECKS[command](header) and (_flat_with_str_keys(header) or _str_keys_throughout(header))


def _str_keys_throughout(value: Any) -> bool:
    if type(value) is dict:
        return all(type(k) is str and _str_keys_throughout(v) for k, v in value.items())
    if type(value) in (list, tuple):
        return all(_str_keys_throughout(v) for v in value)
    return True


def check_header(command: int, header: dict) -> None:
    for field, required, ok, kind in _COMPILED[command]:
        value = header.get(field)
        if value is None:
            if not required:
                continue  # an absent or nil optional field
            if field not in header:
                raise ProtocolError(wire.E_BAD_HEADER, f"{wire.COMMAND_NAMES[command]} header lacks '{field}'")
        elif ok(value):
            continue
        _check_field(field, kind, value)  # raises, with the precise message


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_name(value: Any) -> bool:
    # Up to 63 characters cannot exceed 255 bytes in UTF-8: only longer names need encoding.
    return isinstance(value, str) and 0 < len(value) and (len(value) <= 63 or len(value.encode()) <= wire.MAX_NAME_BYTES)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)


def _is_intlist(value: Any) -> bool:
    # At C speed (a packed message's sizes: up to 1000 of them); type() is int excludes bools.
    return type(value) is list and (not value or _INT_ONLY.issuperset(map(type, value)) and min(value) >= 0)


def _is_strlist(value: Any) -> bool:
    if type(value) is not list:
        return False
    if not value:
        return True
    # The common case at C speed: all str of 1..63 characters (so at most 255 bytes of UTF-8).
    if _STR_ONLY.issuperset(map(type, value)) and min(map(len, value)) > 0 and max(map(len, value)) <= 63:
        return True
    return all(isinstance(v, str) and 0 < len(v) and (len(v) <= 63 or len(v.encode()) <= wire.MAX_NAME_BYTES)
               for v in value)


_STR_ONLY = frozenset({str})
_INT_ONLY = frozenset({int})


def _compile(field: str, kind: str) -> Any:
    if kind == _STR:
        return _is_name if field in _BOUNDED else _is_str
    return {_INT: _is_int, _BOOL: _is_bool, _MAP: _is_map, _STRLIST: _is_strlist, _INTLIST: _is_intlist}[kind]


# Per command, (field, required, check, kind): the schema table turned into direct calls,
# since checking headers is on every hot path (JOB 3.0 -> 1.6 us measured by the bench).
_COMPILED: dict[int, list[tuple[str, bool, Any, str]]] = {
    command: [(f, True, _compile(f, k), k) for f, k in required.items()]
    + [(f, False, _compile(f, k), k) for f, k in optional.items()]
    for command, (required, optional) in SCHEMAS.items()
}


def _fast_check(command: int) -> Any:
    """A predicate for the command's header, generated as straight-line type tests.

    True means the header is valid. False means "not sure": then check_header, the
    precise (and ~4x slower) path, decides and gives the reason. So this only has to
    accept nothing that check_header refuses; names of 64..255 characters, for one,
    go the slow way.
    """
    tests = {
        _STR: "type(v) is str",
        "name": "type(v) is str and 0 < len(v) <= 63",
        _INT: "type(v) is int and v >= 0",
        _BOOL: "(v is True or v is False)",
        _MAP: "type(v) is dict and _STR_ONLY.issuperset(map(type, v))",
        _STRLIST: "_is_strlist(v)",
        _INTLIST: "_is_intlist(v)",
    }
    required, optional = SCHEMAS[command]
    lines = ["def check(h):", "    get = h.get"]
    for fields, is_required in ((required, True), (optional, False)):
        for field, kind in fields.items():
            test = tests["name" if kind == _STR and field in _BOUNDED else kind]
            lines.append(f"    v = get({field!r})")
            if is_required:
                lines.append(f"    if not ({test}): return False")
            else:
                lines.append(f"    if v is not None and not ({test}): return False")
    lines.append("    return True")
    scope = {"_STR_ONLY": _STR_ONLY, "_is_strlist": _is_strlist, "_is_intlist": _is_intlist}
    exec("\n".join(lines), scope)  # noqa: S102 - our own schema table, no outside input
    return scope["check"]


_FAST_CHECKS = {command: _fast_check(command) for command in SCHEMAS}


def _check_field(field: str, kind: str, value: Any) -> None:
    if kind == _STR:
        ok = isinstance(value, str)
        if ok and field in _BOUNDED and (not value or len(value.encode()) > wire.MAX_NAME_BYTES):
            raise ProtocolError(wire.E_BAD_HEADER, f"'{field}' must be 1..{wire.MAX_NAME_BYTES} bytes")
    elif kind == _INT:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    elif kind == _BOOL:
        ok = isinstance(value, bool)
    elif kind == _MAP:
        ok = isinstance(value, dict) and all(isinstance(k, str) for k in value)
    elif kind == _INTLIST:
        ok = isinstance(value, list) and all(_is_int(v) for v in value)
    else:  # _STRLIST: names and ids, bounded like the single-valued ones
        ok = isinstance(value, list) and all(
            isinstance(v, str) and 0 < len(v.encode()) <= wire.MAX_NAME_BYTES for v in value
        )
    if not ok:
        raise ProtocolError(wire.E_BAD_HEADER, f"'{field}' must be {_KIND_TEXT[kind]}, got {_shown(value)}")


_KIND_TEXT = {
    _STR: "a string", _INT: "an int >= 0", _BOOL: "true or false", _MAP: "a map with string keys",
    _INTLIST: "a list of ints >= 0", _STRLIST: f"a list of strings of 1..{wire.MAX_NAME_BYTES} bytes",
}


def _shown(value: Any) -> str:
    """The offending value for an error message: scalars as themselves, containers by type."""
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return f"a {type(value).__name__}"


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
            raise ProtocolError(wire.E_BAD_FRAME, f"{wire.COMMAND_NAMES[command]} needs (header, body) pairs, got {count} frames")
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
        raise ProtocolError(wire.E_BAD_FRAME, f"{wire.COMMAND_NAMES[command]} takes exactly one header frame, got {len(frames) - 1}")
    return Envelope(command, unpack_header(frames[1], command), [])


def _refuse_command_frame(head: Any) -> None:
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
        raise ProtocolError(wire.E_BAD_FRAME, f"{name} takes a header and exactly one body frame, "
                                              f"got {len(frames) - 1} frame(s)")
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
        raise ProtocolError(wire.E_TOO_LARGE, f"{name} body frame of {len(blob)} bytes exceeds "
                                              f"{wire.MAX_PACKED_BYTES}")
    ends = list(itertools.accumulate(sizes))
    if ends[-1] != len(blob):
        raise ProtocolError(wire.E_BAD_FRAME, f"{name} sizes add up to {ends[-1]} bytes, "
                                              f"the body frame has {len(blob)}")
    if max_body is not None and max(sizes) > max_body:
        raise ProtocolError(wire.E_TOO_LARGE, f"body of {max(sizes)} bytes exceeds the limit of {max_body}")
    if type(blob) is not bytes:
        blob = bytes(blob)
    return Envelope(command, header, [blob[start:end] for start, end in zip([0, *ends], ends)])


def pack_event(topic: str, header: dict, body: bytes) -> list[bytes]:
    """Frames on the PUB endpoint: the topic first, so a plain SUB can filter."""
    return [topic.encode(), _packb(header), body]


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


class IdGenerator:
    """Cheap unique ids: a random per-process prefix and a counter."""

    __slots__ = ("prefix", "_count")

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or os.urandom(8).hex()
        self._count = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}-{next(self._count):x}"
