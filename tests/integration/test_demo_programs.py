# SPDX-License-Identifier: MIT
"""The other-language programs `make run` adds to the Procfile (nodes/demo/polyglot.py), against a
real broker: honcho stops each with SIGTERM, and each must close its client and exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from ..conformance.crosslang import ROOT, java_command, ruby_command
from ..conftest import scaled, wait_until

pytestmark = pytest.mark.integration


def java_ads() -> list[str]:
    """The ads-java line of the Procfile: io.zeromesh.demo.AdsService, built as the Cli driver is."""
    return [*java_command()[:-1], "io.zeromesh.demo.AdsService", "--delay", "0"]


def ruby_send() -> list[str]:
    """The send-ruby line of the Procfile."""
    return [ruby_command()[0], "-I", str(ROOT / "clients/ruby/lib"), str(ROOT / "clients/ruby/examples/send_worker.rb")]


PROGRAMS = {
    "ads-java": (java_ads, "Java ads service: service ads on"),
    "send-ruby": (ruby_send, "Ruby send worker: queue send on"),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_sigterm_stops_the_demo_program_with_exit_status_0(name: str, broker, tmp_path: Path) -> None:
    command, started = PROGRAMS[name]
    env = dict(
        os.environ,
        ZEROMESH_BROKER=broker.endpoint,
        ZEROMESH_PUB=broker.pub_endpoint,
        ZEROMESH_REDIS_URL="none",
        ZEROMESH_LOG_TIME="0",
    )
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command(), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: started in log.read_text(errors="replace"), 30, message=f"{name} started")
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=scaled(20))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=scaled(10))
    text = log.read_text(errors="replace")
    assert status == 0, f"{name} exited with {status} on SIGTERM:\n{text}"
    assert "stopped" in text, f"{name} did not say it stopped:\n{text}"
