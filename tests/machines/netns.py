# SPDX-License-Identifier: MIT
"""`Machines`: "machines" that are Linux network namespaces the test creates, so that one can die
(every process in it SIGKILLed) or be cut off (its link down) for real.

Layout: a bridge in the root namespace with 198.51.100.1/24 (TEST-NET-2, RFC 5737: never routed),
so the test process and a Redis in the root namespace are reachable from every machine; machine i
(1..n) is a namespace with lo up and one end of a veth pair, 198.51.100.(10+i)/24, the other end a
port of the bridge. The bridge connects to nothing else: no default route in a machine, no NAT, no
forwarding set up. Names carry the test process's pid (zm<pid>br, zm<pid>-m1, zm<pid>v1), and
`close()` removes every namespace and link even after a failure. Runs of several test processes on
one host take turns through a lock file, since they would all want 198.51.100.1.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from ..processes import ChildProcess, scaled

SUBNET = "198.51.100"
BRIDGE_ADDRESS = f"{SUBNET}.1"
"""The root namespace's address on the bridge: the test process and its Redis."""
NEEDS = "needs root and ip netns: run as root (CI does)"
"""Why the machine tests are skipped (or, under CI=true, fail)."""
LOCK_PATH = Path("/run/zeromesh-netns-tests.lock")
LOCK_WAIT_S = 120.0
"""How long a run waits for another run's machines to go before it gives up."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """One `ip` command, bounded; a failure raises with its stderr."""
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=scaled(10), check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: exit {out.returncode}: {out.stderr.strip()}")
    return out


def unavailable_reason() -> str | None:
    """None when this process may create namespaces, else why not (NEEDS and what failed)."""
    if os.geteuid() != 0:
        return f"{NEEDS}; running as uid {os.geteuid()}"
    probe = f"zm{os.getpid()}-probe"
    try:
        made = ip("netns", "add", probe, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{NEEDS}; ip: {exc}"
    if made.returncode != 0:
        return f"{NEEDS}; ip netns add: {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


class Machine:
    """One namespace: its name, address, and the bridge end of its link (what `cut` takes down)."""

    def __init__(self, index: int, prefix: str) -> None:
        self.index = index
        self.label = f"m{index}"
        self.netns = f"{prefix}-m{index}"
        self.link = f"{prefix}v{index}"  # in the root namespace, a port of the bridge
        self.address = f"{SUBNET}.{10 + index}"

    def __repr__(self) -> str:
        return f"Machine({self.label} {self.address} in {self.netns})"


class Machines:
    """n machines on one bridge. Use as a context manager (or call `close()` in a finally)."""

    def __init__(self, count: int, log_dir: Path) -> None:
        if not 1 <= count <= 200:
            raise ValueError(f"between 1 and 200 machines, got {count}")
        self.prefix = f"zm{os.getpid()}"
        self.bridge = f"{self.prefix}br"
        self.machines = [Machine(i, self.prefix) for i in range(1, count + 1)]
        self.log_dir = log_dir
        self.processes: list[ChildProcess] = []
        self._lock_fd: int | None = None
        self._made_bridge = False
        self._made: list[Machine] = []

    def __enter__(self) -> Machines:
        try:
            self.create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getitem__(self, label: str) -> Machine:
        return next(m for m in self.machines if m.label == label)

    # -- building and removing ------------------------------------------------------

    def create(self) -> None:
        self._take_lock()
        taken = ip("-4", "-o", "addr", "show", "to", f"{SUBNET}.0/24").stdout.strip()
        if taken:
            raise RuntimeError(f"{SUBNET}.0/24 is already on an interface of this host:\n{taken}")
        ip("link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        ip("addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for m in self.machines:
            ip("netns", "add", m.netns)
            self._made.append(m)
            ip("link", "add", m.link, "type", "veth", "peer", "name", "eth0", "netns", m.netns)
            ip("link", "set", m.link, "master", self.bridge)
            ip("link", "set", m.link, "up")
            ip("-n", m.netns, "addr", "add", f"{m.address}/24", "dev", "eth0")
            ip("-n", m.netns, "link", "set", "eth0", "up")
            ip("-n", m.netns, "link", "set", "lo", "up")

    def close(self) -> None:
        """Stop every process, remove every namespace and link; errors are collected, then raised."""
        errors: list[str] = []
        for p in self.processes:
            try:
                p.kill()
            except (AssertionError, OSError) as exc:
                errors.append(f"{p.name}: {exc}")
        for m in self._made:
            try:
                self.kill_all(m)
            except (AssertionError, RuntimeError, OSError) as exc:
                errors.append(str(exc))
            for args in (("link", "del", m.link), ("netns", "del", m.netns)):
                out = ip(*args, check=False)
                if out.returncode != 0 and "Cannot find device" not in out.stderr:
                    errors.append(f"ip {' '.join(args)}: {out.stderr.strip()}")
        self._made.clear()
        if self._made_bridge:
            out = ip("link", "del", self.bridge, check=False)
            if out.returncode != 0:
                errors.append(f"ip link del {self.bridge}: {out.stderr.strip()}")
            self._made_bridge = False
        self._release_lock()
        if errors:
            raise RuntimeError("removing the test machines: " + "; ".join(errors))

    def _take_lock(self) -> None:
        fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + scaled(LOCK_WAIT_S)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock_fd = fd
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RuntimeError(f"another run held {LOCK_PATH} for {LOCK_WAIT_S}s") from None
                time.sleep(0.2)

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    # -- what happens to a machine --------------------------------------------------

    def run(self, m: Machine, name: str, cmd: Sequence[str], **kw) -> ChildProcess:
        """A ChildProcess running `cmd` inside machine `m` (not started; `close()` kills it).

        `ip netns exec` execs the command, so the ChildProcess's pid is the command's own."""
        p = ChildProcess(
            f"{m.label}:{name}", ["ip", "netns", "exec", m.netns, *cmd], self.log_dir / f"{m.label}-{name}.log", **kw
        )
        self.processes.append(p)
        return p

    def pids(self, m: Machine) -> list[int]:
        return [int(x) for x in ip("netns", "pids", m.netns).stdout.split()]

    def kill_all(self, m: Machine, timeout: float = 5.0) -> int:
        """SIGKILL every process in `m` (the machine dies); returns how many there were, once all are gone."""
        killed = self.pids(m)
        for pid in killed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.processes:  # reap ours, so that none lingers as a zombie in `ip netns pids`
            if p.proc is not None and p.proc.pid in killed:
                p.proc.wait(timeout=scaled(timeout))
        deadline = time.monotonic() + scaled(timeout)
        while left := self.pids(m):
            if time.monotonic() >= deadline:
                raise AssertionError(f"processes {left} of {m.netns} outlived SIGKILL by {timeout}s")
            time.sleep(0.05)
        return len(killed)

    def cut(self, m: Machine) -> None:
        """Cut `m` off: its link's bridge end down, so nothing passes either way (no RST, no FIN)."""
        ip("link", "set", m.link, "down")

    def restore(self, m: Machine) -> None:
        ip("link", "set", m.link, "up")


__all__ = ["BRIDGE_ADDRESS", "NEEDS", "SUBNET", "Machine", "Machines", "ip", "unavailable_reason"]
