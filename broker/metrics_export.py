# SPDX-License-Identifier: MIT
"""The routing loop's side of metrics: a snapshot each second into the holder the HTTP thread reads."""

from __future__ import annotations

from typing import Any

from .metrics_server import SnapshotHolder, serve
from .metrics_snapshot import take

SNAPSHOT_PERIOD_S = 1.0


class MetricsExport:
    def __init__(self, address: str) -> None:
        self.address = address
        self.holder = SnapshotHolder()
        try:
            self.server = serve(address, self.holder)
        except OSError as exc:  # the port is taken, or the host is not this machine's
            raise OSError(f"cannot serve metrics on {address}: {exc.strerror or exc}") from None
        self.next_at = 0.0

    def maybe_take(self, router: Any, now: float) -> None:
        if now >= self.next_at:
            self.next_at = now + SNAPSHOT_PERIOD_S
            self.holder.current = take(router, now)  # one reference, swapped whole

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
