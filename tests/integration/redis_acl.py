# SPDX-License-Identifier: MIT
"""A redis-server with the ACL users of docs/redis-acl.conf, for the tests of zeromesh under those users.

The users are made from that file exactly as the operator's guide shows it, with only the password
placeholders replaced. `denials()` reads Redis's ACL LOG: a command a process needs but its user
lacks shows there even when the process swallowed the error.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
from pathlib import Path

import pytest

from ..conftest import ROOT, RedisServer, free_port, scaled

ACL_FILE = ROOT / "docs" / "redis-acl.conf"
BASH_CLIENT = ROOT / "clients" / "bash" / "zeromesh.sh"
PLACEHOLDER = re.compile(r">([A-Z]+)-PASSWORD\b")
ADMIN_PASSWORD = secrets.token_hex(12)


def acl_lines(passwords: dict[str, str]) -> list[str]:
    """The file's ACL SETUSER lines, each placeholder replaced by the role's password."""
    lines = [line for line in ACL_FILE.read_text().splitlines() if line.strip()]
    return [PLACEHOLDER.sub(lambda m: ">" + passwords[m.group(1).lower()], line) for line in lines]


class AclRedis:
    """A redis-server (unix socket and a loopback TCP port) whose default user has a password, with
    the documented users added; `url(role)` connects as zeromesh-ROLE."""

    def __init__(self, directory: Path, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.server = RedisServer(
            directory,
            extra=["--requirepass", ADMIN_PASSWORD, "--port", str(self.port), "--bind", "127.0.0.1", *extra],
        ).start()
        self.passwords = {role: secrets.token_hex(12) for role in ("broker", "edge", "consumer", "monitor")}
        self.admin = self.server.client()
        try:
            for line in acl_lines(self.passwords):
                self.add(line)
        except BaseException:
            self.server.stop()
            raise

    def add(self, line: str) -> None:
        assert self.admin.execute_command(*shlex.split(line)) in (b"OK", True), line

    def url(self, role: str, *, tcp: bool = False, user: str | None = None) -> str:
        user = user or f"zeromesh-{role}"
        if tcp:
            return f"redis://{user}:{self.passwords[role]}@127.0.0.1:{self.port}"
        return f"unix://{user}:{self.passwords[role]}@{self.server.socket}"

    def denials(self) -> list[dict]:
        """ACL LOG entries, but CLIENT SETINFO's: client libraries send it at connect and ignore a refusal."""
        return [e for e in self.admin.acl_log() if e.get("object") != "client|setinfo"]

    def reset(self) -> None:
        self.admin.flushall()
        self.admin.acl_log_reset()


# Fixtures under names of their own, so that a test module imports them without shadowing the
# parameter names (`acl_redis`, `acl`) its tests use.
@pytest.fixture(scope="module", name="acl_redis")
def acl_redis_fixture(tmp_path_factory):
    """The module's ACL Redis, started once."""
    r = AclRedis(tmp_path_factory.mktemp("acl-redis"))
    yield r
    r.server.stop()


@pytest.fixture(name="acl")
def acl_fixture(acl_redis):
    """The module's ACL Redis, emptied and its ACL LOG reset for this test."""
    acl_redis.reset()
    return acl_redis


def run_bash(script: str, url: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """`script` in a bash with the bash client sourced and ZEROMESH_REDIS_URL=url (no other zeromesh setting)."""
    return subprocess.run(
        ["bash", "-c", f"source {shlex.quote(str(BASH_CLIENT))}\n{script}"],
        env={"PATH": os.environ["PATH"], "ZEROMESH_REDIS_URL": url, "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
    )
