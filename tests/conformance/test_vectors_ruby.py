# SPDX-License-Identifier: MIT
"""Every vector in protocol/vectors through the Ruby client's conformance driver.

Each vector goes through the stdin/exit-status contract of
protocol/vectors/README.md (`clients/ruby/bin/zeromesh-conformance`), one Ruby
process per vector, several at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.conformance

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "clients" / "ruby" / "bin" / "zeromesh-conformance"
VECTORS = ROOT / "protocol" / "vectors"
# gaps.json holds subscriber cases, not frames: test_gaps.py runs it.
FILES = sorted(p for p in VECTORS.rglob("*.json") if p.name not in ("schema.json", "gaps.json"))
IDS = [p.relative_to(VECTORS).as_posix() for p in FILES]
RUN_TIMEOUT_S = 30


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ruby() -> str:
    found = shutil.which("ruby")
    if not found:
        pytest.skip("Ruby client: ruby is needed")
    probe = subprocess.run(
        [found, "-e", 'require "msgpack"; require "json"'], capture_output=True, timeout=RUN_TIMEOUT_S, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"Ruby client: the msgpack library is needed ({probe.stderr.decode().strip()})")
    return found


def run_driver(ruby: str, stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ruby, str(DRIVER)], input=stdin, capture_output=True, timeout=RUN_TIMEOUT_S, cwd=ROOT, check=False
    )


@pytest.fixture(scope="module")
def results(ruby: str) -> dict[str, subprocess.CompletedProcess]:
    """The driver's answer for every vector file (its exact bytes on stdin)."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        procs = pool.map(lambda path: run_driver(ruby, path.read_bytes()), FILES)
        return dict(zip(IDS, procs))


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_vector(path: Path, results: dict[str, subprocess.CompletedProcess]) -> None:
    vector = load(path)
    proc = results[path.relative_to(VECTORS).as_posix()]
    if "decoded" in vector:
        assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()
        assert json.loads(proc.stdout) == vector["decoded"]
    else:
        assert proc.returncode == 1, proc.stderr.decode() + proc.stdout.decode()
        assert proc.stdout.decode().strip() == vector["error"]


def test_driver_fails_apart_from_refusals(ruby: str) -> None:
    proc = run_driver(ruby, b"not json")
    assert proc.returncode == 2 and proc.stdout == b""
    assert b"conformance driver failed" in proc.stderr
    proc = run_driver(ruby, b'{"description": "no frames"}')
    assert proc.returncode == 2 and proc.stdout == b""


def test_driver_is_executable() -> None:
    assert os.access(DRIVER, os.X_OK)
