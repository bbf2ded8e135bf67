# SPDX-License-Identifier: MIT
"""Valid batch and packed vectors (SPEC 3.4, 3.5)."""

from __future__ import annotations

from .common import BINARY_BODY, ID, UTF8_BODY, Writer


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
