# SPDX-License-Identifier: MIT
"""The bash client (clients/bash): its bats suites, and its use of the Redis Lua scripts of protocol/redis.

The bats files start their own redis-server, broker, Python worker and edge; this runs
each file and fails, naming it, when a tool is missing. A bats test that skips (say, an
edge without a feature the client relies on) makes the file's test skip with the reasons,
which CI=true turns into a failure like any other skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
        pytest.fail(
            "the bash client's tests need " + ", ".join(missing) + " (make test installs them as root)", pytrace=False
        )


def test_every_suite_is_found() -> None:
    assert [p.name for p in SUITES] == ["http.bats", "interop.bats", "redis.bats", "sentinel.bats"]


def run_in_own_group(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run bats in a process group of its own and end the whole group afterwards, however the run
    ended: bats forks a process per suite, file and test (and the brokers, edges and Redis servers
    they start), and killing bats alone on a timeout left those running for the rest of the suite."""
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.mark.parametrize("suite", SUITES, ids=[p.name for p in SUITES])
def test_bats_suite(suite: Path) -> None:
    require_tools()
    env = dict(os.environ, ZEROMESH_TEST_PYTHON=sys.executable)
    for name in ("ZEROMESH_REDIS_URL", "ZEROMESH_HTTP", "ZEROMESH_BROKER", "ZEROMESH_PUB"):
        env.pop(name, None)  # the suites set their own; a developer's must not leak in
    proc = run_in_own_group(["bats", "--tap", str(suite)], env, scaled(RUN_TIMEOUT_S))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"bats {suite.relative_to(ROOT)} failed:\n{out}"
    assert re.search(r"^1\.\.[1-9]", proc.stdout, re.M), f"bats ran no test:\n{out}"
    skipped = re.findall(r"^ok \d+ (.*?) # skip ?(.*)$", proc.stdout, re.M)
    if skipped:
        pytest.skip("; ".join(f"{name}: {why or 'skipped'}" for name, why in skipped))


LUA_DIR = ROOT / "protocol" / "redis"
BASH_SCRIPTS = {
    "FAIL": "fail.lua",
    "RECOVER": "recover.lua",
    "RECOVER_DEAD": "recover_dead.lua",
    "SCHEDULE": "schedule.lua",
}


def loaded_script(name: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Source zeromesh.sh from another folder and print the text it loaded for one script."""
    return subprocess.run(
        ["bash", "-c", f'source "$1" && printf %s "$_ZM_LUA_{name}"', "_", str(BASH_DIR / "zeromesh.sh")],
        capture_output=True,
        timeout=30,
        check=False,
        cwd="/",
        env=env,
    )


@pytest.mark.parametrize("name", sorted(BASH_SCRIPTS))
def test_bash_loads_the_lua_scripts_from_protocol_redis(name: str) -> None:
    """zeromesh.sh reads protocol/redis/*.lua, the one copy every language uses, byte for byte."""
    proc = loaded_script(name)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == (LUA_DIR / BASH_SCRIPTS[name]).read_bytes()


def test_no_lua_text_is_left_in_the_bash_client() -> None:
    for path in sorted(p for p in BASH_DIR.rglob("*") if p.is_file()):
        text = path.read_text(errors="replace")
        for sign in ("redis.call(", "KEYS[1]", "ARGV[1]"):
            assert sign not in text, f"{path.relative_to(ROOT)} holds Lua ({sign}): load protocol/redis/*.lua instead"


def test_zeromesh_lua_dir_points_an_installed_client_at_the_scripts(tmp_path: Path) -> None:
    for name, file in BASH_SCRIPTS.items():
        (tmp_path / file).write_bytes(b"-- elsewhere: " + name.encode() + b"\n" + (LUA_DIR / file).read_bytes())
    env = dict(os.environ, ZEROMESH_LUA_DIR=str(tmp_path))
    for name, file in BASH_SCRIPTS.items():
        proc = loaded_script(name, env)
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout == (tmp_path / file).read_bytes()


def test_a_missing_script_fails_the_source_and_names_the_setting(tmp_path: Path) -> None:
    proc = loaded_script("FAIL", dict(os.environ, ZEROMESH_LUA_DIR=str(tmp_path)))
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert f"cannot read the Redis script {tmp_path}/fail.lua" in err and "ZEROMESH_LUA_DIR" in err, err


# A consumer that is running a job when the stop comes: it ignores SIGTERM until the job is done,
# as zm_work lets the job at hand finish, and then needs Redis to ack it and remove its name.
SLOW_CONSUMER = """\
source "$1"
zm_work jobs 'trap "" TERM; touch started; sleep 1; cat >>done' --consumer slow
echo "slow consumer: stopped (zm_work status $?)"
"""


def test_make_run_stops_redis_after_the_bash_consumer(tmp_path: Path) -> None:
    """Ctrl-C on `make run` (polyglot --run): every process gets SIGTERM at once, but Redis is
    stopped only after them, so a bash consumer in the middle of a job acks it and stops cleanly."""
    import redis

    require_tools()
    (tmp_path / "consumer.sh").write_text(SLOW_CONSUMER)
    (tmp_path / "Procfile.run").write_text(
        "redis: zeromesh redis\n"
        "consumer: ZEROMESH_LOG_TIME=0 ZEROMESH_REDIS_URL=unix://$PWD/var/redis/redis.sock "
        f"bash consumer.sh {BASH_DIR / 'zeromesh.sh'}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEROMESH_")}
    runner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from zeromesh.nodes.demo.polyglot import run; "
            "sys.exit(run(Path('Procfile.run')))",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        sock = tmp_path / "var" / "redis" / "redis.sock"
        deadline = time.monotonic() + scaled(20)
        while not sock.exists() and time.monotonic() < deadline and runner.poll() is None:
            time.sleep(0.05)
        r = redis.Redis(unix_socket_path=str(sock), socket_timeout=5)
        while r.zcard("zeromesh:consumers:jobs") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        r.rpush("zeromesh:queue:jobs", json.dumps({"id": "j1", "body": "hello"}))
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "started").exists(), "the consumer never started the job"
        r.close()
        os.killpg(runner.pid, signal.SIGINT)  # what a terminal's Ctrl-C does to make's group
        out, _ = runner.communicate(timeout=scaled(30))
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait(10)
    assert runner.returncode == 0, out
    assert (tmp_path / "done").read_text() == "hello", out
    assert "slow consumer: stopped (zm_work status 0)" in out, out
    for bad in ("failed", "Error", "reset", "Traceback"):
        assert bad not in out, f"{bad!r} in the output of a clean stop:\n{out}"
    lines = out.splitlines()
    stopped_at = [i for i, line in enumerate(lines) if "consumer.1 stopped (rc=0)" in line]
    redis_at = [i for i, line in enumerate(lines) if "Redis stopped" in line]
    assert stopped_at and redis_at and stopped_at[0] < redis_at[0], out
    assert lines[-1] == "make run: stopped", out
    # The ack and the consumer's goodbye reached Redis before it stopped: they are in its append-only file.
    aof = b"".join(p.read_bytes() for p in (tmp_path / "var" / "redis").rglob("*.aof*") if p.is_file())
    assert b"LREM" in aof and b"ZREM" in aof, out
    # Its banner and kernel advice went to its own log, not to the mesh's.
    assert "Redis is starting" in (tmp_path / "var" / "redis" / "redis.log").read_text()
