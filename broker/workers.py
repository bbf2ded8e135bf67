# SPDX-License-Identifier: MIT
"""What the broker knows of one connected worker."""

from __future__ import annotations


class WorkerRecord:
    __slots__ = (
        "peer",
        "names",
        "channels",
        "credit",
        "held",
        "last_seen",
        "label",
        "lang",
        "host",
        "who",
        "joined",
        "batch",
        "packed",
        "key",
    )

    def __init__(self, peer: bytes, now: float) -> None:
        self.peer = peer  # ROUTER routing id
        self.names: tuple[str, ...] = ()
        self.channels: list = []  # Channels it serves, in READY order
        self.credit = 0  # window: most items it may hold at once
        self.held: dict = {}  # item id -> Item, in dispatch order
        self.last_seen = now
        self.label = ""
        self.lang = ""
        self.host = ""  # its READY `host`: the machine it runs on
        self.who: tuple[str, str, str] = ("", "", "")  # (label, lang, host), as the trace log keeps it
        self.joined = now
        self.batch = False  # takes JOB_BATCH (its READY said so)
        self.packed = False  # takes JOB_PACKED (likewise)
        self.key = ""  # the CURVE key it registered with ("" with security off)

    @property
    def free(self) -> int:
        return self.credit - len(self.held)

    @property
    def tag(self) -> str:
        """How logs name this worker: its label and routing id."""
        return f"{self.label or 'worker'}@{self.peer.hex()}"
