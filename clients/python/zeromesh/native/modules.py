# SPDX-License-Identifier: MIT
"""The modules compiled by `python -m zeromesh.native.build`: the ones every message passes through.

Chosen from the profiles in docs/PERFORMANCE.md: the codec and framing, the broker's routing loop
and its ledger of jobs and requests, and the client's and worker's send and receive paths. Each is
compiled as it is (Python semantics, type annotations not enforced), so its Python source stays the
reference and the fallback; protocol/fastio is built from its Cython twin fastio.pyx instead (the same
functions calling libzmq directly; see native/__init__.py). Modules that only set up, configure or
administer stay Python: compiling them would cost build time and gain nothing a request can measure.
"""

from __future__ import annotations

COMPILED: tuple[str, ...] = (
    # the wire: frames in and out, headers checked and packed
    "zeromesh.protocol.codec",
    "zeromesh.protocol.fastio",
    "zeromesh.protocol.frames",
    "zeromesh.protocol.packing",
    "zeromesh.protocol.strict",
    "zeromesh.protocol.checks",
    "zeromesh.protocol.envelope",
    "zeromesh.protocol.ids",
    # the broker's routing loop and the state it touches per message
    "zeromesh.broker.server",
    "zeromesh.broker.router",
    "zeromesh.broker.ledger",
    "zeromesh.broker.queues",
    "zeromesh.broker.services",
    "zeromesh.broker.workers",
    "zeromesh.broker.channels",
    "zeromesh.broker.pubsub",
    "zeromesh.broker.trace_log",
    "zeromesh.broker.retry_waits",
    "zeromesh.broker.limits",
    "zeromesh.broker.service_stats",
    # the client's send and receive paths, threads and greenlets
    "zeromesh.transport",
    "zeromesh.thread_transport",
    "zeromesh.green_transport",
    "zeromesh.waiters",
    "zeromesh.pipeline",
    "zeromesh.pushing",
    "zeromesh.messages",
    # the worker's: delivery, handlers, results
    "zeromesh.job",
    "zeromesh.handlers",
    "zeromesh.outbox",
    "zeromesh.worker_session",
    "zeromesh.worker_flush",
    "zeromesh.thread_io",
    "zeromesh.green_io",
)
