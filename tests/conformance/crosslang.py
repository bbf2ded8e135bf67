# SPDX-License-Identifier: MIT
"""Helpers of the cross-language suite (test_cross_language.py).

The bodies every pairing sends, the command lines of the Ruby and Java drivers
(clients/ruby/bin/zeromesh-rb, io.zeromesh.tools.Cli of clients/java/examples), the toolchain checks
that skip with a reason (a failure under CI=true), and `Driver`: one driver
process whose stdout progress lines ("ready", "start ID ATTEMPT", ...) a
thread collects, so a test can wait for one with a bound.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..processes import ChildProcess, scaled

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RUBY_DRIVER = ROOT / "clients" / "ruby" / "bin" / "zeromesh-rb"
JAVA_DIR = ROOT / "clients" / "java"  # the Maven build; the driver is in its examples module
JAVA_EXAMPLES = JAVA_DIR / "examples"
JAVA_BUILD_LOCK = (
    Path(tempfile.gettempdir()) / f"zeromesh-java-build-{hashlib.sha1(str(JAVA_DIR).encode()).hexdigest()[:12]}.lock"
)
"""Held while Maven builds this tree: a test run may have several workers (pytest-xdist), and
two builds writing one target/ folder break each other."""


@contextlib.contextmanager
def java_build_lock() -> Iterator[None]:
    with open(JAVA_BUILD_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def java_build_key(cmd: list[str]) -> str:
    """What a Maven build of this tree depends on: the command and every source and pom (path, size,
    mtime). A build that wrote this key in its stamp is still current, so the test files that each
    need the Java client build it once per change, not once per file and pass (a no-op Maven run
    costs about 7 s of CPU)."""
    h = hashlib.sha256("\0".join(cmd).encode())
    for path in sorted(JAVA_DIR.rglob("*")):
        rel = path.relative_to(JAVA_DIR)
        if "target" not in rel.parts and path.is_file():
            st = path.stat()
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def java_build_current(stamp: Path, key: str, *outputs: Path) -> bool:
    """Whether the build that wrote `stamp` had `key` and its outputs are still there (`mvn clean` removes
    target/ with the stamp in it). Called with java_build_lock held."""
    return stamp.exists() and stamp.read_text() == key and all(out.exists() for out in outputs)


JAVA_MAIN = "io.zeromesh.tools.Cli"
BASH_PUSH = HERE / "bash_push.sh"
BASH_CLIENT = ROOT / "clients" / "bash" / "zeromesh.sh"
BUILD_TIMEOUT_S = 600  # a first build downloads the Maven dependencies

BODIES: dict[str, bytes] = {
    "empty": b"",
    "utf8": "héllo ✓".encode(),
    "binary": bytes(range(256)),
    "mib": random.Random(0x5EED).randbytes(1 << 20),
}
"""Every pairing sends these four, in this order, and checks each arrives byte for byte."""


def digest(data: bytes) -> str:
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}"


def assert_same(what: str, expected: bytes, actual: bytes) -> None:
    """Byte-for-byte equality, reported by length and hash (never a 1 MiB diff)."""
    assert actual == expected, f"{what}: expected {digest(expected)}, got {digest(actual)}"


def write_bodies(directory: Path) -> dict[str, Path]:
    """The bodies as files DIR/<name>.bin (the drivers' FILE arguments), in BODIES order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, body in BODIES.items():
        path = directory / f"{name}.bin"
        path.write_bytes(body)
        paths[name] = path
    return paths


def read_log(path: Path) -> list[list[str]]:
    """A driver's tab-separated log (ids.log, events.log), one list per line."""
    if not path.exists():
        return []
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line]


# -- toolchains -----------------------------------------------------------------


def ruby_command() -> list[str]:
    """`ruby zeromesh-rb`, or a skip naming what is missing."""
    ruby = shutil.which("ruby")
    if not ruby:
        pytest.skip("cross-language (Ruby): ruby is not installed (apt-get install ruby ruby-ffi-rzmq ruby-msgpack)")
    probe = subprocess.run(
        [ruby, "-e", 'require "ffi-rzmq"; require "msgpack"'], capture_output=True, timeout=scaled(30), check=False
    )
    if probe.returncode != 0:
        pytest.skip(
            "cross-language (Ruby): the ffi-rzmq and msgpack libraries are needed "
            f"(apt-get install ruby-ffi-rzmq ruby-msgpack): {probe.stderr.decode().strip()}"
        )
    return [ruby, str(RUBY_DRIVER)]


def java_command() -> list[str]:
    """`java -cp ... io.zeromesh.tools.Cli`, compiled once (offline first, online if that fails)."""
    mvn, java = shutil.which("mvn"), shutil.which("java")
    if not mvn or not java:
        pytest.skip("cross-language (Java): mvn and java are needed (a JDK 17 and Maven)")
    cp_file = JAVA_EXAMPLES / "target" / "crosslang-classpath.txt"  # the library's classes and jars
    # outputFile is relative to each module: the examples module writes cp_file.
    base = [
        mvn,
        "-q",
        "-B",
        "compile",
        "dependency:build-classpath",
        "-DincludeScope=runtime",
        f"-Dmdep.outputFile={cp_file.relative_to(JAVA_EXAMPLES)}",
    ]
    outputs = []
    classes = JAVA_EXAMPLES / "target" / "classes"
    stamp = JAVA_EXAMPLES / "target" / "crosslang-build.stamp"
    with java_build_lock():
        key = java_build_key(base)
        if java_build_current(stamp, key, cp_file, classes):
            return [java, "-cp", os.pathsep.join([str(classes), cp_file.read_text().strip()]), JAVA_MAIN]
        for cmd in ([*base[:3], "-o", *base[3:]], base):
            try:
                proc = subprocess.run(cmd, cwd=JAVA_DIR, capture_output=True, timeout=BUILD_TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                pytest.fail(f"`{' '.join(cmd)}` took longer than {BUILD_TIMEOUT_S}s")
            if proc.returncode == 0 and cp_file.exists():
                stamp.write_text(key)
                return [java, "-cp", os.pathsep.join([str(classes), cp_file.read_text().strip()]), JAVA_MAIN]
            output = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
            outputs.append(f"$ {' '.join(cmd)}\n{output}")
    pytest.fail("building the Java client failed:\n" + "\n".join(outputs))


def bash_tools() -> None:
    """redis-cli and jq (and bash, base64, iconv), or a skip naming the missing ones."""
    missing = [tool for tool in ("bash", "redis-cli", "jq", "base64", "iconv") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"cross-language (bash): {', '.join(missing)} not installed (apt-get install redis-tools jq)")


def bash_client_has_zm_push() -> bool:
    """Whether clients/bash/zeromesh.sh exists and defines zm_push (the bash client is being written)."""
    if not BASH_CLIENT.exists():
        return False
    probe = subprocess.run(
        ["bash", "-c", 'source "$1" >/dev/null 2>&1 && declare -F zm_push >/dev/null', "_", str(BASH_CLIENT)],
        capture_output=True,
        timeout=scaled(10),
        check=False,
    )
    return probe.returncode == 0


# -- processes ------------------------------------------------------------------


def run(cmd: list[str], env: dict, timeout: float, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """A one-shot driver run (push, request), killed if it outlives the bound."""
    try:
        return subprocess.run(
            cmd, input=stdin, capture_output=True, env=env, cwd=ROOT, timeout=scaled(timeout), check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"{' '.join(cmd[-6:])} still running after {timeout}s (killed); "
            f"stderr: {(exc.stderr or b'').decode(errors='replace')}"
        ) from None


def describe(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout[:2000].decode(errors="replace")
    return f"exit {proc.returncode}\nstdout: {out}\nstderr: {proc.stderr.decode(errors='replace')}"


class Driver(ChildProcess):
    """A long-running driver process (work, serve, subscribe): its stdout progress lines collected,
    its stderr in LOG_DIR/<label>.stderr."""

    def __init__(self, cmd: list[str], env: dict, log_dir: Path, label: str) -> None:
        super().__init__(label, cmd, log_dir / f"{label}.stderr", env=env, cwd=ROOT, capture_stdout=True)
        self.label = label

    def _find(self, prefix: str) -> str | None:
        return next((line for line in list(self.stdout_lines) if line.startswith(prefix)), None)

    def wait_line(self, prefix: str, timeout: float) -> str:
        """The first stdout line starting with prefix, waiting up to timeout (scaled)."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            found = self._find(prefix)
            if found is not None:
                return found
            if not self.running:
                self.wait(2)  # reads stdout to its end
                found = self._find(prefix)
                if found is not None:
                    return found
                raise AssertionError(f"{self.label} exited before printing {prefix!r}:\n{self.describe()}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.label}: no {prefix!r} within {timeout}s:\n{self.describe()}")
            time.sleep(0.01)

    def has_line(self, prefix: str) -> bool:
        return self._find(prefix) is not None
