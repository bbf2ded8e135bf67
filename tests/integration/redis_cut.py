# SPDX-License-Identifier: MIT
"""A fault injector between a broker and a real redis-server: a unix-socket relay that, once
armed, lets a command through to Redis, waits for Redis's answer, drops it and closes the
connection. The client sees exactly what a Redis killed after running the command would
show it: a lost reply for a command that did happen, which a SIGKILL only hits by chance."""

from __future__ import annotations

import select
import socket
import threading
from pathlib import Path


class RedisCutRelay:
    def __init__(self, directory: Path, redis_socket: Path) -> None:
        self.path = directory / "cut-relay.sock"
        self.redis_socket = redis_socket
        self.url = f"unix://{self.path}"
        self.cuts = 0  # replies dropped so far
        self._cuts: list[list] = []  # [marker, how many marked commands go through first], in order
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(16)
        self._closed = False
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, name="cut-relay", daemon=True).start()

    def arm(self, *cuts: tuple[bytes, int]) -> None:
        """For each (marker, skip) in turn: cut the connection that sends `marker`, after `skip`
        such commands went through whole; then the next cut is armed."""
        with self._lock:
            self._cuts = [list(cut) for cut in cuts]

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for s in self._open:
                _close(s)

    # -- the relay ---------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(str(self.redis_socket))
            except OSError:
                _close(client)  # Redis is down: so is the relay, as the broker would see it
                continue
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([client, upstream], [], [])
                if upstream in ready:
                    data = upstream.recv(65536)
                    if not data:
                        return
                    client.sendall(data)
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        return
                    if self._cut_here(data):
                        upstream.sendall(data)
                        # Redis has run it once its answer starts: that answer is what gets lost.
                        select.select([upstream], [], [], 5.0)
                        with self._lock:
                            self.cuts += 1
                        return
                    upstream.sendall(data)
        except OSError:
            return
        finally:
            _close(client)
            _close(upstream)

    def _cut_here(self, data: bytes) -> bool:
        with self._lock:
            if not self._cuts or self._cuts[0][0] not in data:
                return False
            if self._cuts[0][1] > 0:
                self._cuts[0][1] -= 1
                return False
            self._cuts.pop(0)
            return True


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
