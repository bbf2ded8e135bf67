# SPDX-License-Identifier: MIT
"""Every vector in protocol/vectors through the Ruby client's conformance driver.

One Ruby process decodes all vectors (`clients/ruby/bin/zeromesh-conformance
--batch DIR`, one line per vector: path, status, output), which spares starting
Ruby 200 times; a few vectors also go through the driver's stdin/exit-status
contract of protocol/vectors/README.md, which the batch mode shares.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .vector_files import FILES, IDS, ROOT, STDIN_SAMPLES, VECTORS, assert_answer, batch_answers, load

pytestmark = pytest.mark.conformance

DRIVER = ROOT / "clients" / "ruby" / "bin" / "zeromesh-conformance"
RUN_TIMEOUT_S = 30


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
    return batch_answers([ruby, str(DRIVER)], RUN_TIMEOUT_S)


def test_batch_covers_every_vector(batch: dict[str, tuple[int, str]]) -> None:
    assert sorted(batch) == IDS


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_vector(path: Path, batch: dict[str, tuple[int, str]]) -> None:
    assert_answer(load(path), *batch[path.relative_to(VECTORS).as_posix()])


@pytest.mark.parametrize("name", STDIN_SAMPLES)
def test_driver_stdin_contract(name: str, ruby: str) -> None:
    """One vector on stdin answers as its batch line does: decoded JSON and 0, or the code and 1."""
    proc = run_driver(ruby, (VECTORS / name).read_bytes())
    assert_answer(load(VECTORS / name), proc.returncode, proc.stdout.decode(), proc.stderr.decode())


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
