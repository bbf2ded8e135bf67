# SPDX-License-Identifier: MIT
"""Worker(pool="gevent"): what it asks of the process, and what a cancelled handler greenlet sees.

The socket and the handler greenlets live in the hub: see green_io.py.
"""

from __future__ import annotations

from .realthreads import gevent_patched

NOT_PATCHED = (
    "Worker(pool='gevent') needs a gevent-patched process: call gevent.monkey.patch_all() "
    "first thing in the program's entry point, before importing anything else "
    "(handlers would otherwise block the whole hub on ordinary I/O)"
)


def require_patched() -> None:
    """Fail fast, as bottle's GeventServer does, rather than run greenlets that never yield."""
    missing = [m for m in ("socket", "time", "threading", "select") if not gevent_patched(m)]
    if missing:
        raise RuntimeError(f"{NOT_PATCHED}; not patched: {', '.join(missing)}")


class GreenCancelled(Exception):
    """Thrown into a handler greenlet when the broker cancels its request."""
