# SPDX-License-Identifier: MIT
"""The codec against protocol/SPEC.md: round trips, every header rule, ids. Pure, no sockets."""

from __future__ import annotations

import re

import msgpack
import pytest

from zeromesh.protocol import codec, strict, wire
from zeromesh.protocol.errors import ProtocolError, ZeromeshError

pytestmark = pytest.mark.unit

# The field tables of SPEC.md section 6, written out again so that a change
# to codec.SCHEMAS that the spec does not know about fails here.
SPEC_FIELDS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "PUSH": (
        {"id": "str", "queue": "str"},
        {
            "trace": "str",
            "parent": "str",
            "headers": "map",
            "at_ms": "int",
            "unique_key": "str",
            "unique_ttl_ms": "int",
        },
    ),
    "CONFIRM": ({"id": "str", "ids": "strlist"}, {"batches": "strlist", "duplicates": "map"}),
    "JOB": (
        {"id": "str", "queue": "str", "attempt": "int", "trace": "str", "lease_ms": "int"},
        {"error": "str", "headers": "map"},
    ),
    "ACK": ({"id": "str", "ids": "strlist"}, {}),
    "NACK": ({"id": "str", "re": "str", "error": "str"}, {"retry": "bool", "retry_in_ms": "int"}),
    "REQUEST": (
        {"id": "str", "service": "str", "timeout_ms": "int"},
        {"trace": "str", "parent": "str", "wait": "bool", "headers": "map", "attempt": "int", "error": "str"},
    ),
    "REPLY": ({"id": "str", "re": "str"}, {"headers": "map"}),
    "ERROR": ({"id": "str", "code": "str", "message": "str"}, {"re": "str", "name": "str", "traceback": "str"}),
    "PUBLISH": ({"id": "str", "topic": "str"}, {"headers": "map", "seq": "int", "epoch": "str"}),
    "READY": (
        {"id": "str", "names": "strlist", "credit": "int"},
        {"label": "str", "lang": "str", "host": "str", "batch": "bool", "packed": "bool"},
    ),
    "CREDIT": ({"id": "str", "credit": "int"}, {}),
    "HEARTBEAT": ({"id": "str"}, {"epoch": "str", "re": "str"}),
    "DISCONNECT": ({"id": "str"}, {"reason": "str"}),
    "EXTEND": ({"id": "str", "ids": "strlist", "lease_ms": "int"}, {}),
    "CANCEL": ({"id": "str", "re": "str"}, {}),
    "ADMIN": ({"id": "str", "op": "str"}, {"args": "map"}),
    "PUSH_BATCH": (
        {"id": "str", "queue": "str", "ids": "strlist"},
        {"trace": "str", "parent": "str", "headers": "map", "at_ms": "int"},
    ),
    "JOB_BATCH": ({"id": "str", "queue": "str", "lease_ms": "int", "ids": "strlist"}, {"headers": "map"}),
    "PUSH_PACKED": (
        {"id": "str", "queue": "str", "ids": "strlist", "sizes": "intlist"},
        {"trace": "str", "parent": "str", "headers": "map", "at_ms": "int"},
    ),
    "JOB_PACKED": (
        {"id": "str", "queue": "str", "lease_ms": "int", "ids": "strlist", "sizes": "intlist"},
        {"headers": "map"},
    ),
}
BOUNDED = {"id", "re", "queue", "service", "topic", "trace"}

SAMPLE = {"str": "abc", "int": 7, "bool": True, "map": {"k": "v"}, "strlist": ["a", "b"], "intlist": [4, 4]}
WRONG = {  # for each kind, values of other msgpack types it must refuse
    "str": [1, True, b"abc", ["a"], {"a": 1}, 1.5],
    "int": ["7", True, False, -1, 1.0, b"\x07", [7]],
    "bool": [1, 0, "true", b"\x01"],
    "map": [["k"], "k", 1, True],
    "strlist": ["a", [1], [""], [b"a"], {"a": 1}, ["a", None]],
    "intlist": [4, ["4"], [True], [-1], [1.0], {"a": 1}, [4, None]],
}


def full_header(command: str, **over) -> dict:
    required, optional = SPEC_FIELDS[command]
    header = {field: SAMPLE[kind] for field, kind in {**required, **optional}.items()}
    header.update(over)
    return header


def minimal_header(command: str) -> dict:
    return {field: SAMPLE[kind] for field, kind in SPEC_FIELDS[command][0].items()}


def frames_for(command: str, header: dict, body: bytes = b"body") -> list[bytes]:
    code = wire.COMMANDS_BY_NAME[command]
    if code in wire.ITEM_COMMANDS:
        return codec.pack_item(code, header, body)
    if code in wire.BATCH_COMMANDS:
        ids = header.get("ids")
        return codec.pack_batch(code, header, [body] * (len(ids) if isinstance(ids, list) and ids else 1))
    if code in wire.PACKED_COMMANDS:
        # The header as given (its sizes too), and a body frame that fits sizes when they are sound.
        sizes = header.get("sizes")
        fits = isinstance(sizes, list) and all(type(n) is int and n >= 0 for n in sizes)
        return [codec.command_frame(code), codec.pack_header(header), b"b" * (sum(sizes) if fits else 4)]
    return codec.pack_control(code, header)


def error_code(frames: list[bytes], **kw) -> str:
    with pytest.raises(ProtocolError) as info:
        codec.unpack(frames, **kw)
    return info.value.code


# -- the schema table is the spec's -------------------------------------------


def test_schemas_match_spec() -> None:
    named = {wire.COMMAND_NAMES[code]: schema for code, schema in codec.SCHEMAS.items()}
    assert named == SPEC_FIELDS
    assert set(named) == set(wire.COMMANDS_BY_NAME)


def test_command_codes_and_frames() -> None:
    assert [wire.COMMANDS_BY_NAME[n] for n in SPEC_FIELDS] == list(range(0x01, 0x15))
    assert codec.command_frame(wire.PUSH) == b"ZM\x01\x01"
    assert codec.command_frame(wire.ADMIN) == bytes.fromhex("5a4d0110")
    assert {wire.COMMAND_NAMES[c] for c in wire.ITEM_COMMANDS} == {"PUSH", "JOB", "REQUEST", "REPLY", "PUBLISH"}


# -- round trips --------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(SPEC_FIELDS))
@pytest.mark.parametrize("shape", ["minimal", "full"])
def test_round_trip(command: str, shape: str) -> None:
    header = minimal_header(command) if shape == "minimal" else full_header(command)
    env = codec.unpack(frames_for(command, header, b"\x00\xffbody"))
    assert env.name == command
    assert env.header == header
    if wire.COMMANDS_BY_NAME[command] in wire.ITEM_COMMANDS:
        assert env.items == [(header, b"\x00\xffbody")]
    elif wire.COMMANDS_BY_NAME[command] in wire.BATCH_COMMANDS:
        assert env.items == [b"\x00\xffbody"] * len(header["ids"])
    elif wire.COMMANDS_BY_NAME[command] in wire.PACKED_COMMANDS:
        assert env.items == [b"bbbb"] * len(header["ids"])  # frames_for's body frame, cut by sizes [4, 4]
    else:
        assert env.items == []


@pytest.mark.parametrize("command", [wire.PUSH_PACKED, wire.JOB_PACKED])
def test_packed_bodies_are_cut_by_sizes(command: int) -> None:
    header = {"id": "m", "queue": "q", "ids": ["a", "b", "c", "d"]}
    if command == wire.JOB_PACKED:
        header["lease_ms"] = 1000
    bodies = [b"", bytes(range(256)), "h\u00e9llo".encode(), b"x"]
    frames = codec.pack_packed(command, header, bodies)
    assert len(frames) == 3 and frames[2] == b"".join(bodies)
    env = codec.unpack(frames, max_body=256)
    assert env.items == bodies and env.header["sizes"] == [0, 256, 6, 1]
    assert error_code(frames, max_body=255) == wire.E_TOO_LARGE


def test_packed_body_frame_is_at_most_1_mib() -> None:
    ids = [f"j{n}" for n in range(16)]
    at_limit = [b"x" * (wire.MAX_PACKED_BYTES // 16)] * 16
    packed = codec.pack_packed(wire.PUSH_PACKED, {"id": "m", "queue": "q", "ids": ids}, at_limit)
    assert len(codec.unpack(packed).items) == 16
    over = at_limit[:-1] + [at_limit[-1] + b"x"]
    # pack_packed refuses to build it, so it is put together by hand, as a careless peer would.
    with pytest.raises(ValueError, match="exceed"):
        codec.pack_packed(wire.PUSH_PACKED, {"id": "m", "queue": "q", "ids": ids}, over)
    frames = [
        codec.command_frame(wire.PUSH_PACKED),
        codec.pack_header({"id": "m", "queue": "q", "ids": ids, "sizes": [len(b) for b in over]}),
        b"".join(over),
    ]
    assert error_code(frames) == wire.E_TOO_LARGE


@pytest.mark.parametrize("body", [b"", bytes(range(256)), "héllo 🦀".encode()], ids=["empty", "binary", "utf8"])
def test_bodies_are_opaque(body: bytes) -> None:
    env = codec.unpack(codec.pack_item(wire.PUSH, {"id": "j", "queue": "q"}, body))
    assert env.items[0][1] == body


def test_batch_round_trip_keeps_order() -> None:
    items = [({"id": f"j{n}", "queue": "q"}, str(n).encode()) for n in range(5)]
    env = codec.unpack(codec.pack_items(wire.PUSH, items))
    assert env.items == items
    assert env.header == items[0][0]
    assert "PUSH" in repr(env) and "items=5" in repr(env)


def test_max_items_boundary() -> None:
    items = [({"id": f"{n:x}", "queue": "q"}, b"") for n in range(wire.MAX_ITEMS_PER_MESSAGE)]
    assert len(codec.unpack(codec.pack_items(wire.PUSH, items)).items) == 1000
    items.append(({"id": "extra", "queue": "q"}, b""))
    assert error_code(codec.pack_items(wire.PUSH, items)) == wire.E_BAD_FRAME


def test_pack_header_is_plain_msgpack() -> None:
    header = {"id": "j", "queue": "q", "headers": {"b": b"\x00"}}
    assert codec.pack_header(header) == msgpack.packb(header, use_bin_type=True)
    assert codec.pack_control(wire.ACK, {"id": "a", "ids": []}) == [b"ZM\x01\x04", b"\x82\xa2id\xa1a\xa3ids\x90"]


# -- framing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "frames, code",
    [
        ([], wire.E_BAD_FRAME),
        ([b"ZM\x01\x0c"], wire.E_BAD_FRAME),
        ([b"XM\x01\x0c", b"\x81\xa2id\xa1h"], wire.E_BAD_FRAME),
        ([b"ZM\x01", b"\x81\xa2id\xa1h"], wire.E_BAD_FRAME),
        ([b"ZM\x01\x0c\x00", b"\x81\xa2id\xa1h"], wire.E_BAD_FRAME),
        ([b"ZM\x02\x0c", b"\x81\xa2id\xa1h"], wire.E_BAD_VERSION),
        ([b"ZM\x00\x0c", b"\x81\xa2id\xa1h"], wire.E_BAD_VERSION),
        ([b"ZM\x01\x7f", b"\x81\xa2id\xa1h"], wire.E_UNKNOWN_COMMAND),
        ([b"ZM\x01\x00", b"\x81\xa2id\xa1h"], wire.E_UNKNOWN_COMMAND),
        ([b"ZM\x01\x0c", b"\x81\xa2id\xa1h", b""], wire.E_BAD_FRAME),  # control + extra frame
        ([b"ZM\x01\x01", b"\x82\xa2id\xa1j\xa5queue\xa1q"], wire.E_BAD_FRAME),  # header without body
    ],
    ids=[
        "none",
        "command-only",
        "signature",
        "short",
        "long",
        "v2",
        "v0",
        "cmd7f",
        "cmd00",
        "control-extra",
        "odd-items",
    ],
)
def test_framing_errors(frames: list[bytes], code: str) -> None:
    assert error_code(frames) == code


def test_body_limit() -> None:
    frames = codec.pack_item(wire.PUSH, {"id": "j", "queue": "q"}, b"x" * 16)
    assert codec.unpack(frames, max_body=16).items[0][1] == b"x" * 16
    assert codec.unpack(frames).items[0][1] == b"x" * 16  # no limit given: none applied
    assert error_code(frames, max_body=15) == wire.E_TOO_LARGE


def test_body_limit_applies_to_every_item() -> None:
    frames = codec.pack_items(wire.PUSH, [({"id": "a", "queue": "q"}, b""), ({"id": "b", "queue": "q"}, b"xx")])
    assert error_code(frames, max_body=1) == wire.E_TOO_LARGE


# -- header encoding ----------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"\xc1",
        b"",
        b"\x82\xa2id\xa1j",
        b"\x81\xa2id\xa1h\x00",
        b"\x92\xa2id\xa1h",
        b"\xa2id",
        b"\xc0",
        b"\x81\xa2id\xa2\xff\xfe",
        b"\x81\xa1\x80\xa1h",
    ],
    ids=["never-used", "empty", "truncated", "trailing", "array", "str", "nil", "utf8-value", "utf8-key"],
)
def test_header_not_a_valid_map(raw: bytes) -> None:
    assert error_code([b"ZM\x01\x0c", raw]) == wire.E_BAD_HEADER


@pytest.mark.parametrize(
    "raw",
    [
        b"\x82\xa2id\xa1h\x01\xa1x",  # int key
        b"\x82\xa2id\xa1h\xc4\x01k\xa1x",  # bin key
        b"\x82\xa2id\xa1h\xa1x\x81\xc4\x01k\x01",  # bin key one map down
        b"\x82\xa2id\xa1h\xa1x\x81\xa1y\x81\x01\x01",  # int key two maps down
        b"\x82\xa2id\xa1h\xa2id\xa1i",  # repeated key
        b"\x82\xa2id\xa1h\xa1x\x82\xa1k\x01\xa1k\x02",  # repeated key one map down
    ],
    ids=["int-key", "bin-key", "nested-bin-key", "deep-int-key", "repeated", "nested-repeated"],
)
def test_map_keys_are_unique_strings_at_every_depth(raw: bytes) -> None:
    assert error_code([b"ZM\x01\x0c", raw]) == wire.E_BAD_HEADER


HTTP_LIKE = {
    "id": "r1",
    "service": "render",
    "timeout_ms": 2000,
    "headers": {"http.method": "GET", "http.headers": {"Host": "a", "Accept": "*/*"}, "tags": [{"k": "v"}]},
}


def test_nested_headers_take_the_fast_path_and_decode_alike() -> None:
    raw = codec.pack_header(HTTP_LIKE)
    assert strict._canonical_without_bin(msgpack.unpackb(raw), raw)
    assert codec.unpack_header(raw, wire.REQUEST) == HTTP_LIKE


@pytest.mark.parametrize(
    "swap",
    [
        (b"\xa6Accept\xa3*/*", b"\xa4Host\xa1b"),  # a repeat two maps down
        (b"\xa1k\xa1v", b"\xa1k\xa1v"),  # nothing changed: the control case
        (b"\xa1k\xa1v", b"\xc4\x01k\xa1v"),  # a bin key inside a list inside a map
    ],
    ids=["repeat", "control", "bin-key-in-list"],
)
def test_nested_fast_path_still_refuses_repeats_and_bin_keys(swap: tuple[bytes, bytes]) -> None:
    raw = codec.pack_header(HTTP_LIKE)
    assert swap[0] in raw
    changed = raw.replace(*swap)
    if changed == raw:
        assert codec.unpack_header(changed, wire.REQUEST) == HTTP_LIKE
    else:
        with pytest.raises(ProtocolError) as info:
            codec.unpack_header(changed, wire.REQUEST)
        assert info.value.code == wire.E_BAD_HEADER


def test_nested_headers_encoded_otherwise_are_accepted_the_strict_way() -> None:
    # str8 for a short string and a float32: valid msgpack that msgpack-python would not write.
    raw = codec.pack_header({"id": "r1", "service": "s", "timeout_ms": 5, "headers": {"x": "PLACEHOLDER"}})
    raw = raw.replace(b"\xabPLACEHOLDER", b"\xd9\x02ab")
    assert not strict._canonical_without_bin(msgpack.unpackb(raw), raw)
    header = codec.unpack_header(raw, wire.REQUEST)
    assert header["headers"] == {"x": "ab"}
    raw32 = msgpack.packb({"id": "r1", "service": "s", "timeout_ms": 5, "headers": {"f": 1.5}}, use_single_float=True)
    assert not strict._canonical_without_bin(msgpack.unpackb(raw32), raw32)
    assert codec.unpack_header(raw32, wire.REQUEST)["headers"] == {"f": 1.5}


def test_header_size_limit() -> None:
    def padded(size: int) -> bytes:
        for pad in range(size, 0, -1):
            raw = codec.pack_header({"id": "h", "p": "x" * pad})
            if len(raw) == size:
                return raw
        raise AssertionError(size)

    assert codec.unpack([b"ZM\x01\x0c", padded(wire.MAX_HEADER_BYTES)]).header["id"] == "h"
    assert error_code([b"ZM\x01\x0c", padded(wire.MAX_HEADER_BYTES + 1)]) == wire.E_BAD_HEADER


def test_unknown_fields_are_kept_whatever_their_type() -> None:
    header = {"id": "h", "x": None, "f": 1.5, "n": -3, "b": b"\x00", "e": msgpack.ExtType(3, b"z"), "l": [{}]}
    assert codec.unpack(codec.pack_control(wire.HEARTBEAT, header)).header == header


def test_non_canonical_encodings_are_accepted() -> None:
    raw = b"\xde\x00\x01\xd9\x02id\xda\x00\x01h"  # map16, str8, str16
    assert codec.unpack([b"ZM\x01\x0c", raw]).header == {"id": "h"}
    raw = b"\x83\xa2id\xa1c\xa3ids\xdc\x00\x00\xa6credit\xcf" + (5).to_bytes(8, "big")  # array16, uint64
    assert codec.unpack([b"ZM\x01\x0b", raw]).header["credit"] == 5


# -- field rules --------------------------------------------------------------


@pytest.mark.parametrize("command, field", [(c, f) for c, (req, _) in SPEC_FIELDS.items() for f in req])
def test_required_field_missing_or_nil(command: str, field: str) -> None:
    header = full_header(command)
    del header[field]
    assert error_code(frames_for(command, header)) == wire.E_BAD_HEADER
    header[field] = None
    assert error_code(frames_for(command, header)) == wire.E_BAD_HEADER


@pytest.mark.parametrize("command, field", [(c, f) for c, (_, opt) in SPEC_FIELDS.items() for f in opt])
def test_optional_field_absent_or_nil(command: str, field: str) -> None:
    header = full_header(command)
    del header[field]
    codec.unpack(frames_for(command, header))
    header[field] = None  # nil is the same as absent
    assert codec.unpack(frames_for(command, header)).header[field] is None


@pytest.mark.parametrize(
    "command, field, kind", [(c, f, k) for c, (req, opt) in SPEC_FIELDS.items() for f, k in {**req, **opt}.items()]
)
def test_field_wrong_type(command: str, field: str, kind: str) -> None:
    for value in WRONG[kind]:
        header = full_header(command, **{field: value})
        assert error_code(frames_for(command, header)) == wire.E_BAD_HEADER, (field, value)


@pytest.mark.parametrize("field", sorted(BOUNDED))
def test_bounded_names_and_ids(field: str) -> None:
    command = next(c for c, (req, opt) in SPEC_FIELDS.items() if field in req or field in opt)

    def check(value: str) -> None:
        codec.unpack(frames_for(command, full_header(command, **{field: value})))

    check("a")
    check("a" * 255)
    check("é" * 127 + "a")  # 255 bytes in UTF-8
    for bad in ("", "a" * 256, "é" * 128):
        with pytest.raises(ProtocolError) as info:
            check(bad)
        assert info.value.code == wire.E_BAD_HEADER


@pytest.mark.parametrize("command, field", [("READY", "names"), ("ACK", "ids"), ("CONFIRM", "ids"), ("EXTEND", "ids")])
def test_string_lists(command: str, field: str) -> None:
    ok = [[], ["a"], ["a" * 255, "é" * 127 + "a"]]
    for value in ok:
        codec.unpack(frames_for(command, full_header(command, **{field: value})))
    for value in [[""], ["a" * 256], ["é" * 128], ["a", 1], "a"]:
        assert error_code(frames_for(command, full_header(command, **{field: value}))) == wire.E_BAD_HEADER


def test_unbounded_strings_may_be_empty_or_long() -> None:
    header = full_header("ERROR", code="", message="m" * 1000, name="", traceback="t" * 10_000)
    assert codec.unpack(frames_for("ERROR", header)).header == header


def test_integers_up_to_uint64() -> None:
    header = full_header("JOB", attempt=0, lease_ms=2**64 - 1)
    assert codec.unpack(frames_for("JOB", header)).header["lease_ms"] == 2**64 - 1


def test_one_bad_item_refuses_the_batch() -> None:
    frames = codec.pack_items(wire.PUSH, [({"id": "a", "queue": "q"}, b""), ({"id": "b"}, b"")])
    assert error_code(frames) == wire.E_BAD_HEADER


def test_check_header_on_python_dicts() -> None:
    codec.check_header(wire.ACK, {"id": "a", "ids": ["j"]})
    with pytest.raises(ProtocolError):
        codec.check_header(wire.ACK, {"id": "a", "ids": "j"})
    with pytest.raises(ProtocolError):
        codec.check_header(wire.PUSH, {"id": "a", "queue": "q", "headers": {1: "x"}})


def test_protocol_error_carries_code_and_message() -> None:
    with pytest.raises(ZeromeshError) as info:
        codec.unpack([b"ZM\x09\x01", b"\x80", b""])
    err = info.value
    assert isinstance(err, ProtocolError)
    assert err.code == "bad_version" and "9" in err.message and str(err).startswith("bad_version: ")


# -- PUB events ---------------------------------------------------------------

EVENT = {"id": "p-1", "topic": "news.été", "seq": 1, "epoch": "3b9f"}


def test_event_round_trip() -> None:
    frames = codec.pack_event("news.été", EVENT, b"goal")
    assert frames[0] == "news.été".encode()
    assert codec.unpack_event(frames) == ("news.été", EVENT, b"goal")


@pytest.mark.parametrize(
    "frames, code",
    [
        ([b"t", codec.pack_header({**EVENT, "topic": "t"})], wire.E_BAD_FRAME),
        ([b"t", codec.pack_header({**EVENT, "topic": "t"}), b"", b""], wire.E_BAD_FRAME),
        ([b"t\xff", codec.pack_header({**EVENT, "topic": "t"}), b""], wire.E_BAD_FRAME),
        ([b"other", codec.pack_header({**EVENT, "topic": "t"}), b""], wire.E_BAD_HEADER),
        ([b"t", codec.pack_header({"id": "p", "topic": "t", "epoch": "e"}), b""], wire.E_BAD_HEADER),
        ([b"t", codec.pack_header({"id": "p", "topic": "t", "seq": 1}), b""], wire.E_BAD_HEADER),
        ([b"t", codec.pack_header({"id": "p", "topic": "t", "seq": -1, "epoch": "e"}), b""], wire.E_BAD_HEADER),
        ([b"", codec.pack_header({**EVENT, "topic": ""}), b""], wire.E_BAD_HEADER),
        ([b"t", b"\xc1", b""], wire.E_BAD_HEADER),
    ],
    ids=["two", "four", "topic-utf8", "mismatch", "no-seq", "no-epoch", "neg-seq", "empty-topic", "not-msgpack"],
)
def test_event_errors(frames: list[bytes], code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.unpack_event(frames)
    assert info.value.code == code


# -- ids ----------------------------------------------------------------------


def test_id_generator_format_and_order() -> None:
    gen = codec.IdGenerator()
    ids = [gen() for _ in range(20)]
    assert len(set(ids)) == 20
    assert all(re.fullmatch(r"[0-9a-f]{12,}-[0-9a-f]+", i) for i in ids)
    assert [int(i.split("-")[1], 16) for i in ids] == list(range(1, 21))
    assert len({i.split("-")[0] for i in ids}) == 1


def test_id_generators_differ_and_take_a_prefix() -> None:
    assert codec.IdGenerator().prefix != codec.IdGenerator().prefix
    gen = codec.IdGenerator("worker-7")
    assert [gen(), gen()] == ["worker-7-1", "worker-7-2"]
    assert codec.IdGenerator("").prefix  # an empty prefix is replaced by a random one


def test_generated_ids_are_valid_ids() -> None:
    gen = codec.IdGenerator()
    gen._count = iter([2**64])  # the counter's far end still fits in an id
    ident = gen()
    assert 0 < len(ident.encode()) <= wire.MAX_NAME_BYTES
    codec.check_header(wire.HEARTBEAT, {"id": ident})


# -- batch commands (PUSH_BATCH, JOB_BATCH) -------------------------------------


def _batch(command: int, ids: list, bodies: list[bytes], **extra) -> list[bytes]:
    header = {"id": "m1", "queue": "q", "ids": ids, **extra}
    if command == wire.JOB_BATCH:
        header["lease_ms"] = 60000
    return codec.pack_batch(command, header, bodies)


@pytest.mark.parametrize("command", [wire.PUSH_BATCH, wire.JOB_BATCH])
def test_batch_bodies_follow_ids_in_order(command: int) -> None:
    bodies = [b"", bytes(range(256)), b"three"]
    env = codec.unpack(_batch(command, ["a", "b", "c"], bodies))
    assert env.command == command and env.header["ids"] == ["a", "b", "c"]
    assert env.items == bodies


@pytest.mark.parametrize("command", [wire.PUSH_BATCH, wire.JOB_BATCH])
def test_batch_refuses_a_count_mismatch(command: int) -> None:
    assert error_code(_batch(command, ["a", "b"], [b"x"])) == wire.E_BAD_FRAME
    assert error_code(_batch(command, ["a"], [b"x", b"y"])) == wire.E_BAD_FRAME
    assert error_code(_batch(command, [], [b"x"])) == wire.E_BAD_FRAME


def test_batch_needs_a_body_frame() -> None:
    frames = [codec.command_frame(wire.PUSH_BATCH), codec.pack_header({"id": "m", "queue": "q", "ids": []})]
    assert error_code(frames) == wire.E_BAD_FRAME


def test_batch_refuses_repeated_ids_and_too_many_bodies() -> None:
    assert error_code(_batch(wire.PUSH_BATCH, ["a", "a"], [b"x", b"y"])) == wire.E_BAD_HEADER
    n = wire.MAX_ITEMS_PER_MESSAGE + 1
    assert error_code(_batch(wire.PUSH_BATCH, [f"j{i}" for i in range(n)], [b"x"] * n)) == wire.E_BAD_FRAME


def test_batch_body_over_the_limit_is_too_large() -> None:
    assert error_code(_batch(wire.PUSH_BATCH, ["a", "b"], [b"x", b"y" * 11]), max_body=10) == wire.E_TOO_LARGE


def test_batch_ids_are_checked_like_every_id() -> None:
    assert error_code(_batch(wire.PUSH_BATCH, ["a", ""], [b"x", b"y"])) == wire.E_BAD_HEADER
    assert error_code(_batch(wire.PUSH_BATCH, ["a", "x" * 256], [b"x", b"y"])) == wire.E_BAD_HEADER
    assert error_code(_batch(wire.PUSH_BATCH, ["a", 7], [b"x", b"y"])) == wire.E_BAD_HEADER


def test_surely_valid_vouches_only_for_headers_a_receiver_accepts():
    ok = {"id": "r1", "service": "svc", "timeout_ms": 500}
    assert codec.surely_valid(wire.REQUEST, ok)
    assert codec.surely_valid(wire.REQUEST, {**ok, "headers": {"http": {"path": "/", "q": ["a", {"b": 1}]}}})
    for unsure in (
        {**ok, "headers": {"http": {b"bin-key": 1}}},  # packed as a bin key: refused
        {**ok, "headers": {"list": [{"k": {b"deep": 1}}]}},
        {**ok, "timeout_ms": "500"},
        {"id": "r1", "service": "svc"},  # timeout_ms is required
        {**ok, "service": "s" * 70},
    ):  # long names take the precise path
        assert not codec.surely_valid(wire.REQUEST, unsure), unsure
    # whatever it vouches for, the receiver's own check accepts
    for header in (ok, {**ok, "wait": True, "trace": "t", "headers": {"a": "b"}}):
        assert codec.surely_valid(wire.REQUEST, header)
        assert codec.unpack(codec.pack_item(wire.REQUEST, header, b"")).items[0][0] == header
