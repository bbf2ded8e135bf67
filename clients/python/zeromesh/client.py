# SPDX-License-Identifier: MIT
"""The producer/requester side: push, request, publish, subscribe, admin."""

from __future__ import annotations

import datetime
import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import zmq

from zeromesh.protocol import codec, defaults, wire
from zeromesh.protocol.curve_certs import client_curve

from . import current, endpoints as endpoint_lists, errors
from .admin_calls import AdminCalls
from .endpoints import FAILOVER_S, BrokerMoved, BrokerRing
from .errors import ZeromeshError, error_from_header
from .green_transport import GreenTransport
from .job_options import later, unique_fields
from .liveness import CONNECT_TIMEOUT_S
from .messages import Body, Reply, to_bytes
from .pushing import push_jobs
from .realthreads import gevent_patched
from .subscription import Subscription
from .thread_transport import ThreadTransport
from .transport import Transport
from .waiters import PING_PREFIX

REQUEST_MARGIN_S = 0.5
"""Extra wait past a request's timeout for the broker's own timeout ERROR to arrive."""

LINGER_S = 1.0
"""close() first delivers what was already sent (a publish, a push) for at most this long."""


class Client(AdminCalls):
    """A connection to one broker at a time, usable from many threads or greenlets.

    `endpoint` None means the environment variable ZEROMESH_BROKER, else
    protocol.defaults.BROKER_ENDPOINT; `pub_endpoint` likewise with
    ZEROMESH_PUB. This constructor is the only place the client reads the
    environment. `green` None means: green if gevent monkey-patched `socket`.

    Either endpoint may be a list (or a comma-separated string) of several brokers'. The client
    then starts on a random one of `endpoint` and moves to the next (round robin) once its broker
    has had no live connection for `failover_s` seconds, logging a WARNING. Pushes not yet
    confirmed go to the new broker under the same ids; a request in flight fails with
    UnreachableError unless it was made with `idempotent=True` (then it is sent again, under a new
    id, with what is left of its deadline). Subscriptions hear every broker of `pub_endpoint`.

    Thread mode keeps one DEALER per calling thread. Green mode shares one
    zmq.green DEALER between greenlets of one OS thread (don't call a green
    client from other OS threads). Call close() when no call is in progress.

    `linger`: close() first delivers what the client already sent (publishes, pushes not
    yet confirmed) for at most this many seconds; 0 drops it. `connect_timeout`: a call
    that has waited this long while the socket had no live connection to the broker (no
    ZeroMQ handshake: nothing listens at the endpoint, or it is not a broker) raises
    UnreachableError then rather than at its deadline.

    `curve_server` / `curve_secret` (else ZEROMESH_CURVE_SERVER / ZEROMESH_CURVE_SECRET; both
    unset: no encryption) make every socket a CURVE client: the broker's public key (40 Z85
    characters, or a certificate file holding it; a comma-separated list gives one per
    endpoint of `endpoint`, in order, and of `pub_endpoint`), and the path of this client's
    secret certificate (NAME.key_secret). A bad setting is a CertificateError (a ValueError)
    here. A broker that refuses the handshake makes waiting calls raise AuthenticationError
    at once; with several brokers the client moves on, and raises once none is usable. A
    command outside the key's roles raises ForbiddenError.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        pub_endpoint: str | None = None,
        *,
        context: zmq.Context | None = None,
        green: bool | None = None,
        admin_timeout: float = 5.0,
        request_margin: float = REQUEST_MARGIN_S,
        linger: float = LINGER_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        failover_s: float = FAILOVER_S,
        curve_server: str | None = None,
        curve_secret: str | None = None,
    ) -> None:
        self.endpoints = endpoint_lists.parse(endpoint or os.environ.get("ZEROMESH_BROKER") or defaults.BROKER_ENDPOINT)
        self.pub_endpoints = endpoint_lists.parse(
            pub_endpoint or os.environ.get("ZEROMESH_PUB") or defaults.PUB_ENDPOINT
        )
        self.curve = client_curve(curve_server, curve_secret, len(self.endpoints))
        self.endpoint = endpoint_lists.joined(self.endpoints)
        self.pub_endpoint = endpoint_lists.joined(self.pub_endpoints)
        self.failover_s = failover_s
        ring = BrokerRing(self.endpoints, failover_s)
        self.green = gevent_patched("socket") if green is None else green
        self.admin_timeout = admin_timeout
        self.request_margin = request_margin
        self.linger = linger
        self.connect_timeout = connect_timeout
        self._own_context = context is None
        if self.green:
            import zmq.green as gzmq

            if context is None:
                self._ctx: Any = gzmq.Context()
            elif isinstance(context, gzmq.Context):
                self._ctx = context
            else:
                self._ctx = gzmq.Context.shadow(context.underlying)
            self._transport: Transport = GreenTransport(self._ctx, ring, connect_timeout, self.curve)
        else:
            self._ctx = context if context is not None else zmq.Context()
            self._transport = ThreadTransport(self._ctx, ring, connect_timeout, self.curve)
        self._ids = codec.IdGenerator()
        self._subscriptions: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._lock = threading.Lock()
        self.closed = False

    @property
    def current_endpoint(self) -> str:
        """The broker this client uses now (one of `endpoints`; it changes on failover)."""
        return self._transport.endpoint

    # -- work queues -------------------------------------------------------

    def push(
        self,
        queue: str,
        body: Body,
        headers: Mapping[str, Any] | None = None,
        timeout: float = defaults.PUSH_TIMEOUT_S,
        *,
        trace: str | None = None,
        id: str | None = None,
        delay: float | None = None,
        at: datetime.datetime | None = None,
        unique_key: str | None = None,
        unique_ttl: float | None = None,
        parent: str | None = None,
    ) -> str:
        """Queue one job; returns its id once the broker confirmed it.

        `delay` (seconds) or `at` (a timezone-aware datetime, any offset) schedules it for
        then: it waits in Redis from the confirm on (SPEC 16.5). `unique_key`: queue it only
        if no other job holds the key, held until this job is done, or for `unique_ttl`
        seconds when given; when another job holds it, nothing is queued and that job's id
        is returned (SPEC 16.6).

        Resends the same id every PUSH_RESEND_S while unconfirmed (e.g. across a
        broker restart). Raises QueueFullError/RemoteError if refused,
        zeromesh.TimeoutError if unconfirmed after `timeout` seconds,
        UnreachableError when no broker answers at the endpoint.
        `id`: the job's id, for a caller that sends a job again after an
        uncertain outcome (a timeout, a `push_many` error's `unconfirmed`): a
        job the broker still holds under that id is confirmed again, not queued
        twice (SPEC 8.1). Ids must be unique; by default the client makes one.
        Inside a handler, the job carries the handler's trace and `parent` = its message id,
        unless `trace` is given (SPEC 12.1); `parent` names a parent explicitly.
        """
        if id is not None and not (isinstance(id, str) and 0 < len(id.encode("utf-8")) <= wire.MAX_NAME_BYTES):
            raise ValueError(f"a job id is a str of 1 to {wire.MAX_NAME_BYTES} bytes, got {id!r}")
        extra = later(delay, at)
        if unique_key is not None:
            extra.update(unique_fields(unique_key, unique_ttl))
        elif unique_ttl is not None:
            raise ValueError("unique_ttl needs a unique_key")
        return push_jobs(
            self._transport,
            self._ids,
            queue,
            [body],
            headers,
            1,
            1,
            timeout,
            trace,
            [id] if id else None,
            extra,
            parent,
        )[0]

    def push_many(
        self,
        queue: str,
        bodies: Iterable[Body],
        headers: Mapping[str, Any] | None = None,
        window: int = 5000,
        batch: int = 250,
        timeout: float = defaults.PUSH_TIMEOUT_S,
        *,
        trace: str | None = None,
        delay: float | None = None,
        at: datetime.datetime | None = None,
        parent: str | None = None,
    ) -> list[str]:
        """Queue many jobs, pipelined; returns their ids in order once all are confirmed.
        `delay` or `at` schedules every one of them for then (as in push).

        Up to `window` jobs are unconfirmed at once, sent `batch` per message.
        On the first ERROR nothing more is sent; once what was sent is settled
        that error is raised, with `.accepted` = the ids the broker confirmed and
        `.unconfirmed` = the (id, body) pairs of every other job, in the order
        given: resend those (with the same ids) and nothing is queued twice.
        `timeout` is the longest wait without any confirmation.
        """
        extra = later(delay, at)
        return push_jobs(
            self._transport, self._ids, queue, list(bodies), headers, window, batch, timeout, trace, None, extra, parent
        )

    # -- request/reply -----------------------------------------------------

    def request(
        self,
        service: str,
        body: Body = b"",
        timeout: float = defaults.REQUEST_TIMEOUT_S,
        wait: bool = False,
        headers: Mapping[str, Any] | None = None,
        *,
        idempotent: bool = False,
    ) -> bytes:
        """The reply body. See request_full."""
        return self.request_full(service, body, timeout, wait, headers, idempotent=idempotent).body

    def request_full(
        self,
        service: str,
        body: Body = b"",
        timeout: float = defaults.REQUEST_TIMEOUT_S,
        wait: bool = False,
        headers: Mapping[str, Any] | None = None,
        *,
        trace: str | None = None,
        parent: str | None = None,
        idempotent: bool = False,
    ) -> Reply:
        """Ask one worker of `service`; returns Reply(body, headers).

        Raises NoRespondersError at once if no worker serves `service` (unless
        `wait`, which queues the request until one does), RemoteError carrying
        the handler's exception name, message and traceback, and
        zeromesh.TimeoutError when the broker's deadline passes or nothing comes
        back within timeout + request_margin (then a CANCEL is sent). A call
        interrupted while it waits (its greenlet killed) sends CANCEL too.

        With several brokers, a request in flight when the client moves to another broker raises
        UnreachableError, unless `idempotent` (running it twice does no harm): then it is sent to
        the new broker under a new id, with what is left of `timeout`.
        """
        frame_body = to_bytes(body)
        traced = current.trace_fields(trace, parent)  # inside a handler: its trace, and its id as parent
        deadline = time.monotonic() + timeout
        remaining = timeout
        while True:
            rid = self._ids()
            header: dict[str, Any] = {"id": rid, "service": service, "timeout_ms": max(1, int(remaining * 1000))}
            if wait:
                header["wait"] = True
            if headers:
                header["headers"] = dict(headers)
            header.update(traced)
            # Under gevent, requests may leave batched with other greenlets' ones (GreenTransport):
            # only those the broker will surely accept, as it refuses a message with one bad item whole.
            batch = self._transport.batches and codec.surely_valid(wire.REQUEST, header)
            try:
                answer = self._call(
                    rid, codec.pack_item(wire.REQUEST, header, frame_body), remaining + self.request_margin, batch
                )
            except BrokerMoved as moved:
                if not idempotent and moved.delivered:
                    raise errors.UnreachableError(
                        f"broker {moved.old} lost with the request in flight; not resent (not idempotent)"
                    ) from None
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    continue
                raise errors.TimeoutError(
                    f"no answer from {service!r} within {timeout}s (broker {moved.old} "
                    f"lost with the request in flight, no time left to resend it)"
                ) from None
            except BaseException as exc:
                # Interrupted while waiting (greenlet killed, gevent.Timeout, Ctrl-C): the caller gave up,
                # so tell the broker, which cancels the request at its worker.
                if not isinstance(exc, ZeromeshError):
                    self._cancel(rid)
                raise
            if answer is None:
                self._cancel(rid)
                raise errors.TimeoutError(
                    f"no answer from {service!r} within {timeout}s (is the broker at {self._transport.endpoint} up?)"
                )
            return Reply(answer[1], answer[0].get("headers") or {})

    def _call(self, rid: str, frames: list[bytes], wait_s: float, batch: bool = False) -> tuple[dict, bytes] | None:
        """Send a message and wait for the REPLY/ERROR whose `re` is rid.

        Returns (header, body) of the REPLY, raises the ERROR, None on timeout.
        batch: a REQUEST item the transport may send together with others.
        """
        answer = self._transport.call_reply(rid, frames, time.monotonic() + wait_s, batch)
        if answer is None:
            return None
        if answer[2] is not None:
            raise error_from_header(answer[2])
        return answer[0], answer[1]

    def _cancel(self, rid: str) -> None:
        try:
            self._transport.send(
                codec.pack_control(wire.CANCEL, {"id": self._ids(), "re": rid}), time.monotonic() + 0.1
            )
        except ZeromeshError:
            pass  # best effort: the broker times the request out anyway

    # -- pub/sub -----------------------------------------------------------

    def publish(self, topic: str, body: Body, headers: Mapping[str, Any] | None = None, timeout: float = 1.0) -> str:
        """Publish one event (at-most-once, no confirmation); returns its id."""
        eid = self._ids()
        header: dict[str, Any] = {"id": eid, "topic": topic}
        if headers:
            header["headers"] = dict(headers)
        self._transport.send(codec.pack_item(wire.PUBLISH, header, to_bytes(body)), time.monotonic() + timeout)
        return eid

    def subscribe(self, *prefixes: str, pub_endpoint: str | list[str] | None = None) -> Subscription:
        """A Subscription to topics starting with any of `prefixes` (none: all topics), from every
        PUB endpoint of the list."""
        sub = Subscription(self._ctx, pub_endpoint or self.pub_endpoints, prefixes, curve=self.curve)
        with self._lock:
            self._subscriptions.add(sub)
        return sub

    def ping(self, timeout: float = 5.0) -> str:
        """Round trip to the broker; returns its epoch. Everything sent before has arrived."""
        deadline = time.monotonic() + timeout
        while True:
            key = PING_PREFIX + self._ids()
            try:
                answer = self._call(
                    key,
                    codec.pack_control(wire.HEARTBEAT, {"id": key[len(PING_PREFIX) :]}),
                    deadline - time.monotonic(),
                )
            except BrokerMoved:
                continue  # a ping does no harm twice: ask the new broker, within the same deadline
            if answer is None:
                raise errors.TimeoutError(f"no answer from the broker at {self._transport.endpoint} within {timeout}s")
            return str(answer[0].get("epoch", ""))

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Deliver what was sent (within `linger`), then let go of every socket."""
        if self.closed:
            return
        self.closed = True
        with self._lock:
            subs = list(self._subscriptions)
        for sub in subs:
            sub.close()
        self._transport.close(self.linger)
        if self._own_context:
            self._ctx.term()  # returns once queued messages left, or `linger` passed

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
