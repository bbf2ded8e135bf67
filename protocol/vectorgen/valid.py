# SPDX-License-Identifier: MIT
"""Valid vectors of every single-item and control command."""

from __future__ import annotations

import msgpack

from .common import ID, Writer, item_variants, pack, padded_header


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
        "PUSH",
        "with_parent",
        "PUSH from a handler: the handler's trace and, as parent, the id of the job it handles (SPEC 12.1).",
        [({"id": f"{ID}-b", "queue": "thumbs", "trace": "trace-0001", "parent": f"{ID}-a"}, b"x")],
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
        "with_parent",
        "REQUEST from a handler: the handler's trace and, as parent, the id of the job it handles (SPEC 12.1).",
        [({"id": f"{ID}-c", "service": "resize", "timeout_ms": 5000, "trace": "trace-0001", "parent": f"{ID}-a"}, b"")],
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

    w.items(
        "PUSH",
        "scheduled",
        "A job for later: at_ms is the instant it may run, in ms since the Unix epoch, UTC (SPEC 16.5).",
        [({"id": f"{ID}-7", "queue": "cards", "at_ms": 1798185600000}, b"merry christmas")],
    )
    w.items(
        "PUSH",
        "unique",
        "A unique job: queued only if no other job holds the key, which is held for the TTL (SPEC 16.6).",
        [({"id": f"{ID}-8", "queue": "mail", "unique_key": "welcome:ann", "unique_ttl_ms": 60000}, b"welcome")],
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

    w.control(
        "CONFIRM",
        "duplicates",
        "A unique push confirmed but not queued: duplicates names the job that holds its key (SPEC 16.6).",
        {"id": "b7a1-8", "ids": [f"{ID}-9"], "duplicates": {f"{ID}-9": f"{ID}-4"}},
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
        "retry_in",
        "NACK naming its own wait before the next attempt, instead of the queue's backoff.",
        {"id": "77d0e5b1c2a4e8f0-6", "re": f"{ID}-1", "error": "rate limited", "retry_in_ms": 30000},
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
        "with_host",
        "READY with the optional host (the worker's host name, for status, metrics and traces).",
        {"id": "77d0e5b1c2a4e8f0-4", "names": ["thumbs"], "credit": 4, "label": "w1", "host": "gpu-box-3"},
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
    padded = padded_header(65536)
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
