# SPDX-License-Identifier: MIT
"""CURVE on the broker's sockets: the ZAP authenticator and the key directory's watcher.

ZAP is pyzmq's `ThreadAuthenticator` (its own thread answers libzmq's handshake questions)
with a callback over the current Keyring. The routing loop owns which keyring is current:
the watcher thread only reads the directory and hands a new Keyring to the loop through a
doorbell; the loop swaps `KeyHolder.current`, which the ZAP thread reads (one reference,
swapped whole, so no lock is needed).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from zeromesh.protocol.curve_certs import Certificate, CertificateError, read_certificate

from .keyring import EMPTY, Keyring, directory_signature, load_keyring

ZAP_DOMAIN = "zeromesh"
PUB_ZAP_DOMAIN = "zeromesh.pub"
_LOG_PERIOD_S = 10.0
_LOG_LINES = 5

log = logging.getLogger("zeromesh.broker")


class KeyHolder:
    """The keyring in force. Written by the routing loop only."""

    def __init__(self, keyring: Keyring = EMPTY) -> None:
        self.current = keyring


class _Provider:
    """The credentials callback: a key is allowed when the keyring has it (and, on the PUB
    endpoint, when it has the subscriber role). Counts and logs refusals (rate limited)."""

    def __init__(self, holder: KeyHolder) -> None:
        self.holder = holder
        self.lock = threading.Lock()
        self.refused = 0
        self._window = (0.0, 0)

    def callback(self, domain: str, key: bytes) -> bool:
        entry = self.holder.current.by_public.get(key)
        if entry is not None and (domain != PUB_ZAP_DOMAIN or entry.allows("subscriber")):
            return True
        reason = "unknown key" if entry is None else f"key {entry.name} has no subscriber role"
        where = "subscriber endpoint" if domain == PUB_ZAP_DOMAIN else "broker endpoint"
        with self.lock:
            self.refused += 1
            start, count = self._window
            now = time.monotonic()
            if now - start > _LOG_PERIOD_S:
                start, count = now, 0
            self._window = (start, count + 1)
        if count < _LOG_LINES:
            log.warning("refused a CURVE handshake on the %s: %s (public key %s)", where, reason, key.decode())
        elif count == _LOG_LINES:
            log.warning("refused CURVE handshakes: suppressing further warnings for %gs", _LOG_PERIOD_S)
        return False


class Authenticator(ThreadAuthenticator):
    """ZAP for both domains; the User-Id of an allowed connection is its key's name."""

    def __init__(self, ctx: zmq.Context, holder: KeyHolder) -> None:
        super().__init__(ctx, log=logging.getLogger("zeromesh.broker.zap"))
        self.holder = holder
        self.provider = _Provider(holder)

    def begin(self) -> None:
        self.start()
        for domain in (ZAP_DOMAIN, PUB_ZAP_DOMAIN):
            self.configure_curve_callback(domain, credentials_provider=self.provider)

    def curve_user_id(self, client_public_key: bytes) -> str:
        z85_key = z85.encode(client_public_key)
        entry = self.holder.current.by_public.get(z85_key)
        return entry.name if entry is not None else z85_key.decode()


class KeyWatcher(threading.Thread):
    """Reads the clients' directory when it changes (checked every `period_s`) or when asked
    (SIGHUP); puts each new Keyring on `fresh` and rings the loop's doorbell."""

    def __init__(self, ctx: zmq.Context, directory: str, doorbell: str, period_s: float = 1.0) -> None:
        super().__init__(name="zeromesh-keys", daemon=True)
        self.ctx = ctx
        self.directory = Path(directory)
        self.doorbell = doorbell
        self.period_s = period_s
        self.fresh: queue.SimpleQueue[Keyring] = queue.SimpleQueue()
        self._asked = threading.Event()
        self._stop = threading.Event()
        self._signature: tuple = ()

    def load_now(self) -> Keyring:
        """The first load, in the caller's thread (the broker does not serve before it)."""
        keyring = load_keyring(self.directory)
        self._signature = keyring.signature
        return keyring

    def reload(self) -> None:
        """Ask for a read at once (from a signal handler: only sets an event)."""
        self._asked.set()

    def stop(self) -> None:
        self._stop.set()
        self._asked.set()

    def run(self) -> None:
        bell = self.ctx.socket(zmq.PUSH)
        bell.setsockopt(zmq.LINGER, 0)
        bell.connect(self.doorbell)
        try:
            while not self._stop.is_set():
                asked = self._asked.wait(self.period_s)
                self._asked.clear()
                if self._stop.is_set():
                    break
                if not asked and directory_signature(self.directory) == self._signature:
                    continue
                try:
                    keyring = load_keyring(self.directory)
                except CertificateError as exc:
                    log.error("keys not reloaded: %s; the keys in force stay", exc)
                    continue
                self._signature = keyring.signature
                self.fresh.put(keyring)
                bell.send(b"keys", zmq.NOBLOCK)
        finally:
            bell.close()


def broker_certificate(path: str) -> Certificate:
    cert = read_certificate(path)
    if cert.secret_key is None:
        raise CertificateError(f"{path} holds no secret-key: give the broker's NAME.key_secret file")
    return cert


def make_curve_server(sock: zmq.Socket, cert: Certificate, domain: str) -> None:
    """Before bind: `sock` speaks CURVE as a server and asks ZAP (domain) about every peer."""
    assert cert.secret_key is not None
    sock.curve_secretkey = cert.secret_key
    sock.curve_publickey = cert.public_key
    sock.curve_server = True
    sock.zap_domain = domain.encode()
