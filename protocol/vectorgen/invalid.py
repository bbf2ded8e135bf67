# SPDX-License-Identifier: MIT
"""Invalid vectors: one fault each, with the error code a receiver must give (SPEC 10)."""

from __future__ import annotations

from typing import Any

from .common import ID, Writer, cmd, pack, padded_header


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
        [cmd("HEARTBEAT"), padded_header(65537)],
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
