# SPDX-License-Identifier: MIT
"""Vectors of the PUB endpoint's events (SPEC 7), valid and invalid."""

from __future__ import annotations

from .common import ID, UTF8_BODY, Writer, cmd, pack


def events(w: Writer) -> None:
    ev = {"id": f"{ID}-3", "topic": "news.sports", "seq": 1, "epoch": "3b9f0c2d"}
    w.event(
        "spec_example",
        "The event example of SPEC.md: PUBLISH as the broker sends it on PUB.",
        "news.sports",
        ev,
        b"goal!",
    )
    w.event(
        "with_headers",
        "An event with the publisher's headers.",
        "news.sports",
        {**ev, "seq": 42, "headers": {"lang": "en"}},
        b"goal!",
    )
    w.event("empty_body", "An event with an empty body.", "news.sports", {**ev, "seq": 2}, b"")
    w.event(
        "utf8_topic",
        "A non-ASCII topic: frame 0 is its UTF-8 bytes.",
        "nouvelles.été",
        {**ev, "topic": "nouvelles.été", "seq": 7},
        UTF8_BODY,
    )
    w.event(
        "unknown_fields",
        "Unknown fields in an event header are ignored.",
        "t",
        {"id": "p-1", "topic": "t", "seq": 1, "epoch": "e", "x-future": [1, 2]},
        b"\x00",
    )

    good = pack(ev)
    w.bad_event("two_frames", "Topic and header but no body frame.", [b"news.sports", good], "bad_frame")
    w.bad_event("four_frames", "An extra frame after the body.", [b"news.sports", good, b"", b""], "bad_frame")
    w.bad_event("topic_not_utf8", "The topic frame is not valid UTF-8.", [b"news\xff", good, b""], "bad_frame")
    w.bad_event(
        "topic_mismatch", "The topic frame and the header's topic differ.", [b"news.weather", good, b""], "bad_header"
    )
    w.bad_event(
        "missing_seq",
        "An event header without seq.",
        [b"news.sports", pack({k: v for k, v in ev.items() if k != "seq"}), b""],
        "bad_header",
    )
    w.bad_event(
        "missing_epoch",
        "An event header without epoch.",
        [b"news.sports", pack({k: v for k, v in ev.items() if k != "epoch"}), b""],
        "bad_header",
    )
    w.bad_event("header_not_msgpack", "The header frame is not msgpack.", [b"news.sports", b"\xc1", b""], "bad_header")
    w.bad_event(
        "empty_topic", "An empty topic (names are 1..255 bytes).", [b"", pack({**ev, "topic": ""}), b""], "bad_header"
    )
    w.bad_event("broker_frame", "A broker-endpoint message is not an event.", [cmd("PUBLISH"), good, b""], "bad_header")
