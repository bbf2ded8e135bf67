# SPDX-License-Identifier: MIT
"""The broker's socket loop: poll -> drain -> route -> flush -> send. Owns the sockets."""

from __future__ import annotations

import errno
import gc
import logging
import math
import os
import re
import signal
import socket
import time
from typing import TYPE_CHECKING

import zmq

from zeromesh.protocol import wire
from zeromesh.protocol.curve_certs import CertificateError
from zeromesh.protocol.fastio import NOBLOCK, recv_frames_keyed, recv_frames_nowait, send_frames
from zeromesh.protocol.redis_url import redact

from .config import BrokerConfig
from .redis_link import Connect, RedisLink
from .redis_periodic import PeriodicTicks
from .redis_registry import Registration
from .router import Router
from .secure_sockets import SecureSockets

if TYPE_CHECKING:
    from .metrics_export import MetricsExport

log = logging.getLogger("zeromesh.broker")

_DRAIN_FRAMES = 1000
"""Frames read per poll round before we flush (dispatch, confirm, send). Counted in frames, not
messages, since one batch message carries up to 1000 jobs, and a packed message's bodies count
as the frames they have in a batch (Router.handle's weight): this bounds the latency of confirms
and of jobs to workers under load, and a round still amortises over many messages. Uncounted,
a round read every packed push in flight (5000 jobs, 5 ms) while the workers waited."""


class BrokerServer:
    def __init__(
        self, ctx: zmq.Context, config: BrokerConfig, clock=time.monotonic, connect: Connect | None = None
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.clock = clock
        self.epoch = os.urandom(6).hex()
        self.router = Router(config, self.epoch, log, clock())
        self.stopping = False
        self.sock = ctx.socket(zmq.ROUTER)
        self.pub = ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 1000)
        self.sock.setsockopt(zmq.SNDHWM, 1_000_000)
        self.sock.setsockopt(zmq.RCVHWM, 1_000_000)
        # libzmq drops a connection that sends a frame past this; below it we answer too_large ourselves.
        # A packed frame (SPEC 3.5) may hold up to 1 MiB of small bodies whatever the body limit.
        self.sock.setsockopt(zmq.MAXMSGSIZE, max(4 * config.max_message, wire.MAX_PACKED_BYTES) + 65536)
        self.pub.setsockopt(zmq.LINGER, 1000)
        self.pub.setsockopt(zmq.SNDHWM, 1_000_000)
        # CURVE and ZAP, when configured, before the first bind (raises CertificateError).
        self.secure = SecureSockets(ctx, config, self.router, log) if config.curve_secret else None
        try:
            if self.secure is not None:
                self.secure.protect(self.sock, self.pub)
            self.sock.bind(config.endpoint)
            self.pub.bind(config.pub_endpoint)
        except zmq.ZMQError:
            if self.secure is not None:
                self.secure.close()
            raise
        self.link: RedisLink | None = None
        self.bell: zmq.Socket | None = None
        if config.redis_url:
            if connect is None:
                raise TypeError("BrokerServer needs connect (url -> redis.Redis) when a Redis URL is configured")
            doorbell = f"inproc://zeromesh-redis-{id(self):x}"
            self.bell = ctx.socket(zmq.PULL)
            self.bell.bind(doorbell)
            # What others read in the registry: the advertised endpoints, else the bound ones.
            registration = Registration(
                config.name,
                self.epoch,
                config.advertise or config.endpoint,
                config.advertise_pub or config.pub_endpoint,
                time.time(),
            )
            self.link = RedisLink(
                ctx,
                config.redis_url,
                doorbell,
                registration,
                connect=connect,
                recovery_s=config.recovery_s,
                queue_policy=lambda name: (config.queue(name).raw, config.queue(name).max_attempts),
                min_replicas=config.min_replicas,
                wait_ms=config.redis_wait_ms,
                periodic=PeriodicTicks(config.schedules, lambda name: config.queue(name).raw)
                if config.schedules
                else None,
            )
        # Metrics: the loop swaps in a snapshot each second; the HTTP thread reads only that.
        self.metrics: MetricsExport | None = None
        if config.metrics:
            # Imported only when asked for: prometheus_client and http.server cost every broker's start ~75 ms.
            from .metrics_export import MetricsExport

            self.metrics = MetricsExport(config.metrics)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def request_stop(self, signum=None, frame=None) -> None:
        self.stopping = True

    def install_signals(self) -> None:
        # The wakeup fd makes poll() return at once on a signal instead of at the next tick.
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        if self.secure is not None:
            signal.signal(signal.SIGHUP, lambda signum, frame: self.secure.reload())  # type: ignore[union-attr]

    def run(self) -> int:
        router = self.router
        sock = self.sock
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        link, bell = self.link, self.bell
        clock = self.clock
        secure = self.secure
        if secure is not None:
            secure.start(poller)
        if link is not None and bell is not None:
            poller.register(bell, zmq.POLLIN)
            link.start()
            # Route nothing until we know whether Redis is there: a push must not be refused
            # as queue_full in the first milliseconds only because the link had not connected yet.
            deadline = clock() + link.connect_timeout_s + 1.0
            while router.redis_status == "starting" and clock() < deadline:
                if bell.poll(100):
                    self._drain_link(link, bell, clock())
            if router.state.refused:  # another live broker has our name: serve nothing
                link.stop(timeout=0.0)
                log.error("broker not started: %s", router.state.refused)
                return 1
        clock = self.clock
        drain_deadline = None
        log.info(
            "broker %s up: clients and workers on %s, subscribers on %s, epoch %s, redis %s",
            self.config.name,
            self.config.endpoint,
            self.config.pub_endpoint,
            self.epoch,
            redact(self.config.redis_url) if self.config.redis_url else "off (in-memory queues only)",
        )
        while True:
            now = clock()
            if router.state.refused and not self.stopping:  # our name was taken while we were silent
                log.error("stopping: %s", router.state.refused)
                self.stopping = True
            if self.stopping and drain_deadline is None:
                log.info(
                    "stopping: refusing new work, waiting up to %gs for %d item(s) in flight",
                    self.config.shutdown_grace_s,
                    router.in_flight(),
                )
                router.begin_drain()
                drain_deadline = now + self.config.shutdown_grace_s
            if drain_deadline is not None and (
                (router.in_flight() == 0 and not router.writes_pending()) or now >= drain_deadline
            ):
                break
            timeout = router.timeout(now)
            if drain_deadline is not None:
                timeout = min(timeout, 0.05)
            # Whole milliseconds, rounded up: pyzmq truncates, and 0.4 ms would become a poll that never sleeps.
            events = dict(poller.poll(math.ceil(timeout * 1000.0)))
            if self._wake_r.fileno() in events:
                try:
                    self._wake_r.recv(512)
                except BlockingIOError:
                    pass
            if link is not None and bell is not None and bell in events:
                now = clock()
                self._drain_link(link, bell, now)
            if secure is not None and secure.wants(events):
                self.pub = secure.on_events(events, clock(), self.pub)
            if sock in events:
                now = clock()
                handle = router.handle
                budget = _DRAIN_FRAMES
                if secure is None:
                    while budget > 0:
                        frames = recv_frames_nowait(sock)
                        if frames is None:
                            break
                        if len(frames) < 2:
                            budget -= 1
                            continue  # an empty routed message: nothing to answer
                        budget -= 1 + handle(frames[0], frames[1:], now)
                else:  # each message names the key it came with
                    while budget > 0:
                        try:
                            frames, key = recv_frames_keyed(sock, NOBLOCK)
                        except zmq.Again:
                            break
                        if len(frames) < 2:
                            budget -= 1
                            continue
                        budget -= 1 + handle(frames[0], frames[1:], now, key)
            if secure is not None:
                router.counters["auth_refused"] = secure.refused()
            now = clock()
            router.flush(now)
            router.expire(now)
            if self.metrics is not None:
                self.metrics.maybe_take(router, now)
            router.flush(now)
            self._send_all()
        left = router.in_flight()
        lost = router.finish()
        self._send_all()
        if link is not None:
            link.stop(timeout=self.config.shutdown_grace_s)
            unsaved = link.unsaved()
            if unsaved.get("jobs"):
                lost += unsaved["jobs"]
                log.error(
                    "%d job(s) held only in memory could not be handed back to Redis (%s, waited %gs) and are lost",
                    unsaved["jobs"],
                    self.router.redis_status,
                    self.config.shutdown_grace_s,
                )
            if unsaved.get("dead_letters"):
                lost += unsaved["dead_letters"]
                log.error("%d dead letter(s) could not be written to Redis and are lost", unsaved["dead_letters"])
            if unsaved.get("acks"):
                log.warning("%d acknowledgement(s) did not reach Redis: those jobs will run again", unsaved["acks"])
        if left:
            log.warning("stopped with %d item(s) still in flight on workers", left)
        if lost:
            log.error("broker stopped (epoch %s); %d job(s) lost", self.epoch, lost)
            return 1
        if router.state.refused:
            return 1
        log.info("broker stopped (epoch %s)", self.epoch)
        return 0

    def _drain_link(self, link: RedisLink, bell: zmq.Socket, now: float) -> None:
        while recv_frames_nowait(bell) is not None:
            pass
        results = link.results
        on_redis = self.router.on_redis
        while not results.empty():
            on_redis(results.get_nowait(), now)

    def _send_all(self) -> None:
        router = self.router
        commands = router.take_redis_commands()
        if commands and self.link is not None:
            self.link.submit(commands)
        if router.outbox:
            _send_each(self.sock, router.outbox, router.counters, "send_dropped")
        if router.events:
            _send_each(self.pub, router.events, router.counters, "events_dropped")

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        if self.secure is not None:
            self.secure.close()
        if self.bell is not None:
            self.bell.close()
        self.sock.close()
        self.pub.close()
        self._wake_r.close()
        self._wake_w.close()


def _send_each(sock: zmq.Socket, messages: list[list[bytes]], counters, dropped: str) -> None:
    """Send and clear; a peer past its high-water mark loses the message (counted), never the loop."""
    for frames in messages:
        try:
            send_frames(sock, frames, NOBLOCK)
        except zmq.Again:
            counters[dropped] += 1
    messages.clear()


def serve(config: BrokerConfig, connect: Connect | None = None) -> int:
    """Run a broker until SIGTERM/SIGINT; return the exit code. `connect` makes the Redis client
    (needed when config.redis_url is set)."""
    ctx = zmq.Context()
    try:
        server = BrokerServer(ctx, config, connect=connect)
    except (zmq.ZMQError, CertificateError, OSError) as exc:
        # The half-built server's sockets are unreachable now; closing them with linger 0 is what
        # lets term() return (a plain term() waits on them for ever, deaf to Ctrl-C).
        ctx.destroy(linger=0)
        log.error("%s", _bind_failure(exc, config) if isinstance(exc, zmq.ZMQError) else f"{exc}; broker not started")
        return 1
    server.install_signals()
    # Routing state is plain acyclic objects made by the thousand; the collector's frequent
    # young-generation passes over them cost the loop time and find nothing.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    try:
        return server.run()
    finally:
        server.close()
        ctx.term()


def _bind_failure(exc: zmq.ZMQError, config: BrokerConfig) -> str:
    """Name the one address that failed: pyzmq appends "(addr='...')" to a bind error."""
    found = re.search(r"\(addr='([^']*)'\)", str(exc))
    address = found.group(1) if found else f"{config.endpoint} or {config.pub_endpoint}"
    reason = exc.strerror.split(" (addr=")[0]
    hint = " (another broker or program listens there)" if exc.errno == errno.EADDRINUSE else ""
    return f"cannot bind {address}: {reason}{hint}; broker not started"
