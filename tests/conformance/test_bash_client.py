# SPDX-License-Identifier: MIT
"""The bash client (clients/bash): its bats suites, and its copies of the Redis Lua scripts.

The bats files start their own redis-server, broker, Python worker and edge; this runs
each file and fails, naming it, when a tool is missing. A bats test that skips (say, an
edge without a feature the client relies on) makes the file's test skip with the reasons,
which CI=true turns into a failure like any other skip.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zeromesh.protocol import redis_keys

from ..conftest import scaled

pytestmark = pytest.mark.conformance

ROOT = Path(__file__).resolve().parents[2]
BASH_DIR = ROOT / "clients" / "bash"
SUITES = sorted((BASH_DIR / "test").glob("*.bats"))
TOOLS = {
    "bats": "bats (Debian package bats)",
    "redis-cli": "redis-cli 7+ (Debian package redis-tools)",
    "redis-server": "redis-server (Debian package redis-server)",
    "jq": "jq (Debian package jq)",
    "curl": "curl (Debian package curl)",
    "iconv": "iconv (Debian package libc-bin)",
}
RUN_TIMEOUT_S = 120


def require_tools() -> None:
    missing = [why for tool, why in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        pytest.fail("the bash client's tests need " + ", ".join(missing) + " (make test installs them as root)",
                    pytrace=False)


def test_every_suite_is_found() -> None:
    assert [p.name for p in SUITES] == ["http.bats", "interop.bats", "redis.bats"]


@pytest.mark.parametrize("suite", SUITES, ids=[p.name for p in SUITES])
def test_bats_suite(suite: Path) -> None:
    require_tools()
    env = dict(os.environ, ZEROMESH_TEST_PYTHON=sys.executable)
    for name in ("ZEROMESH_REDIS_URL", "ZEROMESH_HTTP", "ZEROMESH_BROKER", "ZEROMESH_PUB"):
        env.pop(name, None)  # the suites set their own; a developer's must not leak in
    proc = subprocess.run(["bats", "--tap", str(suite)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=scaled(RUN_TIMEOUT_S), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"bats {suite.relative_to(ROOT)} failed:\n{out}"
    assert re.search(r"^1\.\.[1-9]", proc.stdout, re.M), f"bats ran no test:\n{out}"
    skipped = re.findall(r"^ok \d+ (.*?) # skip ?(.*)$", proc.stdout, re.M)
    if skipped:
        pytest.skip("; ".join(f"{name}: {why or 'skipped'}" for name, why in skipped))


@pytest.mark.parametrize("name", ["FAIL", "RECOVER", "RECOVER_DEAD"])
def test_lua_scripts_match_the_protocol(name: str) -> None:
    """zeromesh.sh carries its own copies (it stands alone); they must be the SPEC's, byte for byte."""
    proc = subprocess.run(["bash", "-c", f'source "$1" && printf %s "$_ZM_LUA_{name}"', "_",
                           str(BASH_DIR / "zeromesh.sh")], capture_output=True, timeout=30, check=True)
    assert proc.stdout.decode() == getattr(redis_keys, name)
