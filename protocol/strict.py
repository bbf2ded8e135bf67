# SPDX-License-Identifier: MIT
"""One header frame -> a checked dict, refusing the msgpack that ZMSH/1 does not allow (SPEC.md section 4).

A header is a msgpack map with string keys, each key once, at every depth. msgpack
itself allows bin keys and repeated keys (the last one wins in Python, maybe the
first in another language, so two receivers would read one header differently).
Decoding with a hook that sees every map is 4x slower, so the common shapes are
proved sound at C speed first and only the rest takes the strict hook.
"""

from __future__ import annotations

from typing import Any

import msgpack

from . import wire
from .checks import FAST_CHECKS, check_header
from .errors import ProtocolError

_unpackb = msgpack.unpackb
_packb = msgpack.Packer(use_bin_type=True).pack  # one Packer, reused: msgpack.packb builds one per call
# Defined here, not imported: CPython 3.11 compiles `imported_name.method(...)` as an attribute load
# plus a call (it guesses a module), a bound method made each time on this hot path.
_STR_ONLY = frozenset({str})
_FLAT_TYPES = frozenset({str, int, float, bool, bytes, type(None), msgpack.ExtType, msgpack.Timestamp})


def unpack_header(raw: bytes, command: int) -> dict:
    """Decode and check one header frame against the command's schema. Raises ProtocolError."""
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
        if not (
            type(header) is dict
            and (
                _flat_with_str_keys(header)
                and _declared_size(raw) == len(header)
                or _canonical_without_bin(header, raw)
            )
        ):
            header = _unpackb(raw, raw=False, object_pairs_hook=_map_from_pairs)
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(wire.E_BAD_HEADER, f"header is not valid msgpack: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError(wire.E_BAD_HEADER, f"header is a {type(header).__name__}, not a map")
    if not FAST_CHECKS[command](header):
        check_header(command, header)  # the precise checks: raise with the reason, or accept
    return header


def surely_valid(command: int, header: dict) -> bool:
    """True only if a receiver will accept this header as built (a sender's check before it batches).

    The fast per-command type tests, plus str keys at every depth (a bytes key would be
    packed as bin, which receivers refuse). False means "not sure", not "invalid".
    """
    return FAST_CHECKS[command](header) and (_flat_with_str_keys(header) or _str_keys_throughout(header))


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


def _str_keys_throughout(value: Any) -> bool:
    if type(value) is dict:
        return all(type(k) is str and _str_keys_throughout(v) for k, v in value.items())
    if type(value) in (list, tuple):
        return all(_str_keys_throughout(v) for v in value)
    return True
