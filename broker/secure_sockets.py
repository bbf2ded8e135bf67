# SPDX-License-Identifier: MIT
"""The broker's sockets under CURVE: set them up, follow key changes, count failed handshakes.

Owned by the server loop: it calls `protect()` before binding, `start()` before polling,
`on_events()` when the keys doorbell or the ROUTER's monitor has something, `refused()`
for the counter of refused handshakes, and `close()` at the end.
"""

from __future__ import annotations

import logging
import time

import zmq
from zmq.utils.monitor import parse_monitor_message

from .config import BrokerConfig
from .keyring import Keyring
from .router import Router
from .security import (
    PUB_ZAP_DOMAIN,
    ZAP_DOMAIN,
    Authenticator,
    KeyHolder,
    KeyWatcher,
    broker_certificate,
    make_curve_server,
)

_FAILED_EVENTS: dict[int, str] = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "auth",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "no_detail",
}
_WHY = {
    "auth": "key refused",
    "protocol": "a peer without CURVE, or not speaking ZMTP",
    "no_detail": "a peer that gave up or sent garbage, or a client with a wrong server key",
}
_REBIND_TRIES = 20  # a closed listener frees its port in the I/O thread: a few ms


class SecureSockets:
    def __init__(self, ctx: zmq.Context, config: BrokerConfig, router: Router, log: logging.Logger) -> None:
        self.ctx = ctx
        self.router = router
        self.log = log
        self.cert = broker_certificate(config.curve_secret)  # raises CertificateError: nothing started yet
        doorbell = f"inproc://zeromesh-keys-{id(self):x}"
        self.watcher = KeyWatcher(ctx, config.curve_clients, doorbell)
        keyring = self.watcher.load_now()
        self.holder = KeyHolder(keyring)
        router.keyring = keyring
        self._report(keyring, "loaded")
        self.bell = ctx.socket(zmq.PULL)
        self.bell.bind(doorbell)
        # ZAP answers before the first bind: libzmq lets a CURVE client in when no handler is bound.
        self.auth = Authenticator(ctx, self.holder)
        self.auth.begin()
        self.monitor: zmq.Socket | None = None
        self._failed_logged: dict[str, tuple[float, int]] = {}

    def protect(self, sock: zmq.Socket, pub: zmq.Socket) -> None:
        make_curve_server(sock, self.cert, ZAP_DOMAIN)
        make_curve_server(pub, self.cert, PUB_ZAP_DOMAIN)
        self.monitor = sock.get_monitor_socket(
            sum(_FAILED_EVENTS), addr=f"inproc://zeromesh-router-monitor-{id(self):x}"
        )

    def start(self, poller: zmq.Poller) -> None:
        self.watcher.start()
        poller.register(self.bell, zmq.POLLIN)
        if self.monitor is not None:
            poller.register(self.monitor, zmq.POLLIN)

    def reload(self) -> None:
        self.watcher.reload()

    def refused(self) -> int:
        return self.auth.provider.refused

    def wants(self, events: dict) -> bool:
        return self.bell in events or (self.monitor is not None and self.monitor in events)

    def on_events(self, events: dict, now: float, pub: zmq.Socket) -> zmq.Socket:
        """Count failed handshakes; take reloaded keys. Returns the PUB socket to use from now on."""
        if self.monitor is not None and self.monitor in events:
            self._drain_monitor(now)
        if self.bell in events:
            while True:
                try:
                    self.bell.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
            while not self.watcher.fresh.empty():
                pub = self._take(self.watcher.fresh.get_nowait(), now, pub)
        return pub

    def _take(self, keyring: Keyring, now: float, pub: zmq.Socket) -> zmq.Socket:
        old = self.holder.current
        self.holder.current = keyring  # new handshakes: the ZAP thread reads this
        removed = self.router.set_keyring(keyring, now)
        added = sorted(set(keyring.by_name) - set(old.by_name))
        changes = f"added: {', '.join(added) or 'none'}; removed: {', '.join(removed) or 'none'}"
        self._report(keyring, f"reloaded ({changes})")
        if any(old.by_name[name].allows("subscriber") for name in removed):
            pub = self._rebind(pub)
        return pub

    def _rebind(self, pub: zmq.Socket) -> zmq.Socket:
        """A PUB socket cannot drop one subscriber: re-bind it, so every subscriber handshakes
        again and a removed key is refused (the others see a gap, as after any reconnect)."""
        endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT)
        fresh = self.ctx.socket(zmq.PUB)
        fresh.setsockopt(zmq.LINGER, 1000)
        fresh.setsockopt(zmq.SNDHWM, 1_000_000)
        make_curve_server(fresh, self.cert, PUB_ZAP_DOMAIN)
        pub.close(linger=0)
        for attempt in range(_REBIND_TRIES):
            try:
                fresh.bind(endpoint)
                break
            except zmq.ZMQError:
                if attempt == _REBIND_TRIES - 1:
                    raise
                time.sleep(0.01)
        self.router.counters["pub_rebinds"] += 1
        self.log.warning("subscriber endpoint %s re-bound: a subscriber key was removed", endpoint)
        return fresh

    def _drain_monitor(self, now: float) -> None:
        assert self.monitor is not None
        while True:
            try:
                event = parse_monitor_message(self.monitor.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            kind = _FAILED_EVENTS.get(int(event["event"]))
            if kind is None:
                continue
            self.router.counters[f"handshake_failed.{kind}"] += 1
            first, count = self._failed_logged.get(kind, (now, 0))
            if now - first > 10.0:
                first, count = now, 0
            if count < 5:
                self.log.warning(
                    "handshake failed on %s: %s (%s)", event["endpoint"].decode(errors="replace"), kind, _WHY[kind]
                )
            self._failed_logged[kind] = (first, count + 1)

    def _report(self, keyring: Keyring, what: str) -> None:
        self.log.info("client keys %s: %d key(s) from %s", what, len(keyring), self.watcher.directory)
        for problem in keyring.problems:
            self.log.error("client key skipped: %s", problem)

    def close(self) -> None:
        self.watcher.stop()
        self.auth.stop()
        if self.monitor is not None:
            self.monitor.close(linger=0)
        self.bell.close(linger=0)
