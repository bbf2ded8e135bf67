# SPDX-License-Identifier: MIT
"""`ChildProcess`: the one way the tests run a long-lived process.

Shaped like werkzeug's `DevServerClient`: the command's output goes to a log file under
tmp_path, `start()` waits for a readiness check, and the test can signal, kill or stop it;
unlike it, every wait has a deadline (scaled by ZEROMESH_TEST_TIME_FACTOR), and a process
that misses one fails the test with its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

TIME_FACTOR = float(os.environ.get("ZEROMESH_TEST_TIME_FACTOR", "1"))
"""Scale every wait by this on slow machines."""

_Self = TypeVar("_Self", bound="ChildProcess")


def scaled(seconds: float) -> float:
    return seconds * TIME_FACTOR


class ChildProcess:
    """A process a test starts and owns; `stop()` (or `kill()`) it in the fixture's teardown.

    `ready` is called until it returns true (or the process exits, or the deadline passes).
    With `capture_stdout`, stdout lines are collected in `stdout_lines` by a thread (for drivers that
    report progress there) and the log file holds stderr alone.
    """

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | str | None = None,
        ready: Callable[[], bool] | None = None,
        capture_stdout: bool = False,
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.log_path = log_path
        self.child_env = env
        self.cwd = cwd
        self.ready = ready
        self.capture_stdout = capture_stdout
        self.stdout_lines: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    # -- starting -----------------------------------------------------------------

    def start(self: _Self, wait: bool = True, timeout: float = 10.0) -> _Self:
        """Start the command; with `wait`, return once `ready` says so."""
        with open(self.log_path, "ab") as log:  # the child holds its own descriptor from here on
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.child_env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.capture_stdout else log,
                stderr=log if self.capture_stdout else subprocess.STDOUT,
            )
        if self.capture_stdout:
            self._reader = threading.Thread(target=self._read_stdout, name=f"stdout-{self.name}", daemon=True)
            self._reader.start()
        if wait:
            self.wait_ready(timeout)
        return self

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.stdout_lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))

    def wait_ready(self, timeout: float = 10.0, interval: float = 0.05) -> None:
        """Until `ready()` is true; an exit or the deadline fails the test with the log."""
        if self.ready is None:
            return
        deadline = time.monotonic() + scaled(timeout)
        while True:
            if not self.running:
                raise AssertionError(f"{self.name} exited with {self.returncode} before it was ready:\n{self.log()}")
            if self.ready():
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.log()}")
            time.sleep(interval)

    # -- looking at it ------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log(self) -> str:
        """Everything the process wrote (stderr alone with capture_stdout)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        """State, command and output, for a failure message."""
        state = "running" if self.running else f"exit {self.returncode}"
        out = f"{self.name} ({state}): {' '.join(self.cmd[-8:])}\n"
        if self.capture_stdout:
            out += "stdout:\n" + "\n".join(self.stdout_lines[-20:]) + "\nstderr:\n"
        return out + self.log()[-4000:]

    # -- ending it ----------------------------------------------------------------

    def signal(self, signum: int) -> None:
        """Send `signum` if the process still runs."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit status within `timeout` seconds (scaled); a process still running fails the test."""
        assert self.proc is not None, f"{self.name} was never started"
        try:
            status = self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout}s:\n{self.describe()}") from None
        self._join_reader()
        return status

    def kill(self) -> int | None:
        """SIGKILL and reap."""
        if self.proc is None:
            return None
        self.signal(signal.SIGKILL)
        return self.wait(10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it outlives `timeout` seconds (scaled); the exit status."""
        if self.proc is None:
            return None
        if self.running:
            self.proc.send_signal(signal.SIGCONT)  # a test may have left it stopped
            self.proc.terminate()
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=scaled(5))
        self._join_reader()
        return self.proc.returncode

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(scaled(2))  # EOF once the process is gone
            if self.proc is not None and self.proc.stdout is not None and not self._reader.is_alive():
                self.proc.stdout.close()


__all__ = ["ChildProcess", "TIME_FACTOR", "scaled"]
