# SPDX-License-Identifier: MIT
"""Header checks against the schema table: a fast yes-or-not-sure, and a precise check with reasons.

Checking headers is on every hot path, so each command gets a predicate generated
from `schema.SCHEMAS` as straight-line type tests (FAST_CHECKS). It only says True
for headers that `check_header` accepts; on False, `check_header` decides and raises
with the reason. Both see decoded values, with keys already known to be strings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import wire
from .errors import ProtocolError
from .schema import BOOL, BOUNDED, INT, INTLIST, MAP, SCHEMAS, STR, STRLIST

Check = Callable[[dict], bool]

STR_ONLY = frozenset({str})
"""For `STR_ONLY.issuperset(map(type, values))`: "all are str" at C speed."""
_INT_ONLY = frozenset({int})


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_name(value: Any) -> bool:
    # Up to 63 characters cannot exceed 255 bytes in UTF-8: only longer names need encoding.
    return (
        isinstance(value, str) and 0 < len(value) and (len(value) <= 63 or len(value.encode()) <= wire.MAX_NAME_BYTES)
    )


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
    if STR_ONLY.issuperset(map(type, value)) and min(map(len, value)) > 0 and max(map(len, value)) <= 63:
        return True
    return all(
        isinstance(v, str) and 0 < len(v) and (len(v) <= 63 or len(v.encode()) <= wire.MAX_NAME_BYTES) for v in value
    )


def _compile(field: str, kind: str) -> Callable[[Any], bool]:
    if kind == STR:
        return _is_name if field in BOUNDED else _is_str
    return {INT: _is_int, BOOL: _is_bool, MAP: _is_map, STRLIST: _is_strlist, INTLIST: _is_intlist}[kind]


# Per command, (field, required, check, kind): the schema table turned into direct calls
# (JOB 3.0 -> 1.6 us measured by the bench against interpreting the table).
_COMPILED: dict[int, list[tuple[str, bool, Callable[[Any], bool], str]]] = {
    command: [(f, True, _compile(f, k), k) for f, k in required.items()]
    + [(f, False, _compile(f, k), k) for f, k in optional.items()]
    for command, (required, optional) in SCHEMAS.items()
}


def check_header(command: int, header: dict) -> None:
    """Raise ProtocolError(E_BAD_HEADER) naming the first field that breaks the command's schema."""
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


def _fast_check(command: int) -> Check:
    """A predicate for the command's header, generated as straight-line type tests.

    True means the header is valid. False means "not sure": then check_header, the
    precise (and ~4x slower) path, decides and gives the reason. So this only has to
    accept nothing that check_header refuses; names of 64..255 characters, for one,
    go the slow way.
    """
    tests = {
        STR: "type(v) is str",
        "name": "type(v) is str and 0 < len(v) <= 63",
        INT: "type(v) is int and v >= 0",
        BOOL: "(v is True or v is False)",
        MAP: "type(v) is dict and _STR_ONLY.issuperset(map(type, v))",
        STRLIST: "_is_strlist(v)",
        INTLIST: "_is_intlist(v)",
    }
    required, optional = SCHEMAS[command]
    lines = ["def check(h):", "    get = h.get"]
    for fields, is_required in ((required, True), (optional, False)):
        for field, kind in fields.items():
            test = tests["name" if kind == STR and field in BOUNDED else kind]
            lines.append(f"    v = get({field!r})")
            if is_required:
                lines.append(f"    if not ({test}): return False")
            else:
                lines.append(f"    if v is not None and not ({test}): return False")
    lines.append("    return True")
    scope: dict[str, Any] = {"_STR_ONLY": STR_ONLY, "_is_strlist": _is_strlist, "_is_intlist": _is_intlist}
    exec("\n".join(lines), scope)  # noqa: S102 - our own schema table, no outside input
    check: Check = scope["check"]
    return check


FAST_CHECKS: dict[int, Check] = {command: _fast_check(command) for command in SCHEMAS}
"""command -> predicate: True if the header is surely valid, False if check_header must decide."""


def _check_field(field: str, kind: str, value: Any) -> None:
    if kind == STR:
        ok = isinstance(value, str)
        if ok and field in BOUNDED and (not value or len(value.encode()) > wire.MAX_NAME_BYTES):
            raise ProtocolError(wire.E_BAD_HEADER, f"'{field}' must be 1..{wire.MAX_NAME_BYTES} bytes")
    elif kind == INT:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    elif kind == BOOL:
        ok = isinstance(value, bool)
    elif kind == MAP:
        ok = isinstance(value, dict) and all(isinstance(k, str) for k in value)
    elif kind == INTLIST:
        ok = isinstance(value, list) and all(_is_int(v) for v in value)
    else:  # STRLIST: names and ids, bounded like the single-valued ones
        ok = isinstance(value, list) and all(
            isinstance(v, str) and 0 < len(v.encode()) <= wire.MAX_NAME_BYTES for v in value
        )
    if not ok:
        raise ProtocolError(wire.E_BAD_HEADER, f"'{field}' must be {_KIND_TEXT[kind]}, got {_shown(value)}")


_KIND_TEXT = {
    STR: "a string",
    INT: "an int >= 0",
    BOOL: "true or false",
    MAP: "a map with string keys",
    INTLIST: "a list of ints >= 0",
    STRLIST: f"a list of strings of 1..{wire.MAX_NAME_BYTES} bytes",
}


def _shown(value: Any) -> str:
    """The offending value for an error message: scalars as themselves, containers by type."""
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return f"a {type(value).__name__}"
