# SPDX-License-Identifier: MIT
"""Long-running `zeromesh` processes: a taken address, their log lines, and a clean stop on a signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from zeromesh import Client

from ..conftest import ROOT, BrokerProcess, free_port, scaled, wait_until
from ..processes import ChildProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DEMO = ROOT / "nodes" / "demo"


def broker_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "zeromesh", "broker", *args]


@pytest.mark.parametrize("taken", ["endpoint", "pub"])
def test_a_broker_on_a_taken_address_exits_at_once_naming_it(broker, taken):
    env = dict(broker.env)
    if taken == "endpoint":
        env["ZEROMESH_PUB"] = f"tcp://127.0.0.1:{free_port()}"
        address = broker.endpoint
    else:
        env["ZEROMESH_BROKER"] = f"tcp://127.0.0.1:{free_port()}"
        address = broker.pub_endpoint
    started = time.monotonic()
    second = subprocess.Popen(broker_cmd(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = second.communicate(timeout=scaled(10))
    except subprocess.TimeoutExpired:
        second.kill()
        out, _ = second.communicate()
        raise AssertionError(f"the second broker still runs after 10 s:\n{out.decode()}") from None
    assert time.monotonic() - started < scaled(5)
    assert second.returncode != 0, out
    assert f"cannot bind {address}: Address already in use".encode() in out, out
    assert b"Traceback" not in out
    broker.wait_ready()  # the first one serves on


def test_zeromesh_log_time_0_leaves_the_time_out(broker_factory):
    plain = broker_factory(env={"ZEROMESH_LOG_TIME": "0"})
    stamped = broker_factory(args=["--name", "stamped"])  # two live brokers on one Redis: two names
    assert re.match(r"INFO zeromesh\.", plain.log().splitlines()[0]), plain.log()
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO zeromesh\.", stamped.log().splitlines()[0])
    out = subprocess.run(
        [sys.executable, "-m", "zeromesh", "status"],
        env=dict(plain.env, ZEROMESH_LOG_TIME="sometimes"),
        capture_output=True,
        timeout=scaled(20),
    )
    assert out.returncode != 0 and b"ZEROMESH_LOG_TIME must be 1" in out.stderr and b"'sometimes'" in out.stderr


def assert_clean_exit(p: ChildProcess) -> None:
    """Exits 0 within 20 s of its signal and logs no error."""
    rc = p.wait(20)
    log = p.log()
    assert rc == 0, f"{p.name} exited {rc}:\n{log}"
    assert "Traceback" not in log and not re.search(r"\berror\b", log, re.IGNORECASE), f"{p.name}:\n{log}"


def mesh_process(name: str, cmd: list[str], env: dict, tmp_path: Path) -> ChildProcess:
    return ChildProcess(name, cmd, tmp_path / f"{name}.log", env=env, cwd=tmp_path).start()


def test_each_process_stops_cleanly_on_sigint(redis_server, tmp_path):
    """Ctrl-C reaches every process at once (as under honcho): each says it stopped and exits 0."""
    redis_server.flush()
    http = f"127.0.0.1:{free_port()}"
    broker = BrokerProcess(
        tmp_path,
        env={"ZEROMESH_HTTP": http, "ZEROMESH_REDIS_URL": redis_server.url},
        args=["--config", str(DEMO / "broker.toml")],
        log_name="broker.log",
    ).start()
    env = broker.env
    zm = [sys.executable, "-m", "zeromesh"]
    procs = [
        mesh_process("edge", zm + ["edge", "--routes", str(DEMO / "routes.toml")], env, tmp_path),
        mesh_process(
            "render",
            zm
            + ["node", "render", "--templates", str(DEMO / "templates"), "--site-module", "zeromesh.nodes.demo.site"],
            env,
            tmp_path,
        ),
        mesh_process("workers", [sys.executable, "-m", "zeromesh.nodes.demo.workers"], env, tmp_path),
        mesh_process("demo", [sys.executable, "-m", "zeromesh.demo"], env, tmp_path),
    ]
    try:
        with Client(broker.endpoint, green=False) as client:
            labels = {"demo", "demo-workers"}
            wait_until(
                lambda: (
                    labels <= {w["label"] for w in client.status()["workers"]}
                    and any(w["label"].startswith("render@") for w in client.status()["workers"])
                ),
                30,
                interval=0.2,
                message="the demo's workers registered",
            )
            job_id = client.push("demo", "resize photo 42")
        wait_until(lambda: _get(f"http://{http}/") == 200, 30, interval=0.2, message="the edge serving /")
        wait_until(lambda: job_id in procs[3].log(), 10, message="the demo worker ran the job")
        assert f"job {job_id} (attempt 1): resize photo 42" in procs[3].log()  # text, not b'...'
    finally:
        for p in [broker, *procs]:
            p.signal(signal.SIGINT)
    try:
        for p in procs + [broker]:
            assert_clean_exit(p)
    finally:
        for p in procs + [broker]:
            p.kill()
    assert "broker stopped" in broker.log()
    assert "stopping" in procs[0].log()
    for p in procs[1:]:
        assert "worker stopped" in p.log(), p.log()


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except Exception:
        return 0


def test_zeromesh_redis_stops_on_sigint(tmp_path):
    env = dict(os.environ, ZEROMESH_DATA_DIR=str(tmp_path / "redis"))
    p = mesh_process("redis", [sys.executable, "-m", "zeromesh", "redis"], env, tmp_path)
    try:
        wait_until((tmp_path / "redis" / "redis.sock").exists, 10, message="the embedded Redis socket")
        time.sleep(0.3)
        p.signal(signal.SIGINT)
        assert_clean_exit(p)
    finally:
        p.kill()
