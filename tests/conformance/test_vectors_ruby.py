# SPDX-License-Identifier: MIT
"""Every vector in protocol/vectors through the Ruby client's conformance driver.

One Ruby process decodes all vectors (`clients/ruby/bin/zeromesh-conformance
--batch DIR`, one line per vector: path, status, output), which spares starting
Ruby 200 times; a few vectors also go through the driver's stdin/exit-status
contract of protocol/vectors/README.md, which the batch mode shares.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
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
def batch(ruby: str) -> dict[str, tuple[int, str]]:
    """The driver's answer for every vector file: (status, output)."""
    proc = subprocess.run(
        [ruby, str(DRIVER), "--batch", str(VECTORS)], capture_output=True, timeout=RUN_TIMEOUT_S, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    results = {}
    for line in proc.stdout.decode("utf-8").splitlines():
        name, status, output = line.split("\t", 2)
        results[name] = (int(status), output)
    return results


def test_batch_covers_every_vector(batch: dict[str, tuple[int, str]]) -> None:
    assert sorted(batch) == IDS


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_vector(path: Path, batch: dict[str, tuple[int, str]]) -> None:
    vector = load(path)
    status, output = batch[path.relative_to(VECTORS).as_posix()]
    if "decoded" in vector:
        assert status == 0, output
        assert json.loads(output) == vector["decoded"]
    else:
        assert status == 1, output
        assert output.strip() == vector["error"]


@pytest.mark.parametrize(
    "name",
    [
        "valid/push/batch.json",
        "valid/job/big_integers.json",
        "events/valid/utf8_topic.json",
        "invalid/body_too_large.json",
        "events/invalid/missing_seq.json",
    ],
)
def test_driver_stdin_contract(name: str, ruby: str) -> None:
    """One vector on stdin answers as its batch line does: decoded JSON and 0, or the code and 1."""
    vector = load(VECTORS / name)
    proc = run_driver(ruby, (VECTORS / name).read_bytes())
    if "decoded" in vector:
        assert proc.returncode == 0, proc.stderr.decode()
        assert json.loads(proc.stdout) == vector["decoded"]
    else:
        assert proc.returncode == 1, proc.stderr.decode()
        assert proc.stdout.decode().strip() == vector["error"]


def test_driver_fails_apart_from_refusals(ruby: str) -> None:
    proc = run_driver(ruby, b"not json")
    assert proc.returncode == 2 and proc.stdout == b""
    assert b"conformance driver failed" in proc.stderr
    proc = run_driver(ruby, b'{"description": "no frames"}')
    assert proc.returncode == 2 and proc.stdout == b""
    proc = subprocess.run([ruby, str(DRIVER), "--bogus"], capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
    assert proc.returncode == 2 and b"usage" in proc.stderr


def test_driver_is_executable() -> None:
    assert os.access(DRIVER, os.X_OK)
