# SPDX-License-Identifier: MIT
"""Fixtures of the machine tests: the machines (skipped without root, a failure under CI=true),
the worker programs of every language (built once per run), a Redis with AOF on the bridge
address, and the mesh over it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ..conftest import CI, RedisServer
from .mesh import Mesh
from .netns import BRIDGE_ADDRESS, Machines, unavailable_reason
from .workers import WorkerPrograms


@pytest.fixture
def machines(tmp_path):
    reason = unavailable_reason()
    if reason:
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)
    with Machines(3, tmp_path) as ms:
        yield ms


@pytest.fixture(scope="session")
def worker_programs(tmp_path_factory):
    """The Ruby check and the Java build, once per run, before a test's workers start (a skip, or
    under CI a failure, names a missing toolchain). Tests ask for `machines` first, so a run without
    root skips before it builds anything."""
    programs = WorkerPrograms(tmp_path_factory.mktemp("machine-workers"))
    programs.ruby()
    programs.java()
    return programs


class BridgeRedis(RedisServer):
    """redis-server with AOF on the bridge address (and its unix socket for the test's own checks).
    Protected mode off: it refuses other addresses than loopback without a password, and the
    bridge reaches nothing but the test's machines."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as s:
            s.bind((BRIDGE_ADDRESS, 0))
            port = s.getsockname()[1]
        super().__init__(
            directory,
            extra=[
                "--port",
                str(port),
                "--bind",
                BRIDGE_ADDRESS,
                "--protected-mode",
                "no",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
            ],
        )
        self.url_for_machines = f"redis://{BRIDGE_ADDRESS}:{port}"


@pytest.fixture
def bridge_redis(machines, tmp_path):
    server = BridgeRedis(tmp_path / "redis")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def mesh(machines, worker_programs, bridge_redis, tmp_path):
    """Every machine: a broker and a worker of each language (Machines.close() kills them all)."""
    return Mesh(machines, bridge_redis.url_for_machines, worker_programs, tmp_path).start()
