# SPDX-License-Identifier: MIT
"""Every vector in protocol/vectors through the Java client's conformance driver.

One JVM decodes all vectors (`io.zeromesh.Conformance --batch DIR`, one line per
file; the driver is a test class of clients/java/zeromesh, not part of the library
jar); a few vectors also go through the stdin/exit-status contract of
protocol/vectors/README.md, since starting a JVM per vector would take minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .crosslang import java_build_current, java_build_key, java_build_lock
from .vector_files import FILES, IDS, ROOT, STDIN_SAMPLES, VECTORS, assert_answer, batch_answers, load

pytestmark = pytest.mark.conformance

JAVA_DIR = ROOT / "clients" / "java" / "zeromesh"  # the library module
BUILD_TIMEOUT_S = 600  # the first build downloads the dependencies
RUN_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def java_cmd() -> list[str]:
    """`java -cp ...` for the compiled driver; compiles with Maven first (no tests run)."""
    mvn, java = shutil.which("mvn"), shutil.which("java")
    if not mvn or not java:
        pytest.skip("Java client: mvn and java are needed")
    cp_file = JAVA_DIR / "target" / "test-classpath.txt"
    with java_build_lock():
        _build(mvn, cp_file)
    classpath = os.pathsep.join(
        [str(JAVA_DIR / "target" / "test-classes"), str(JAVA_DIR / "target" / "classes"), cp_file.read_text().strip()]
    )
    return [java, "-cp", classpath, "io.zeromesh.Conformance"]


def _build(mvn: str, cp_file: Path) -> None:
    """test-compile and the runtime classpath, unless the build with the same sources is there."""
    cmd = [
        mvn,
        "-q",
        "-B",
        "test-compile",
        "dependency:build-classpath",
        "-Dmdep.includeScope=runtime",
        f"-Dmdep.outputFile={cp_file}",
    ]
    stamp = JAVA_DIR / "target" / "vectors-build.stamp"
    key = java_build_key(cmd)
    if java_build_current(stamp, key, cp_file, JAVA_DIR / "target" / "test-classes", JAVA_DIR / "target" / "classes"):
        return
    subprocess.run(cmd, cwd=JAVA_DIR, check=True, timeout=BUILD_TIMEOUT_S)
    stamp.write_text(key)


@pytest.fixture(scope="module")
def batch(java_cmd: list[str]) -> dict[str, tuple[int, str]]:
    return batch_answers(java_cmd, RUN_TIMEOUT_S)


def test_batch_covers_every_vector(batch: dict[str, tuple[int, str]]) -> None:
    assert sorted(batch) == IDS


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_vector(path: Path, batch: dict[str, tuple[int, str]]) -> None:
    assert_answer(load(path), *batch[path.relative_to(VECTORS).as_posix()])


@pytest.mark.parametrize("name", STDIN_SAMPLES)
def test_driver_stdin_contract(name: str, java_cmd: list[str]) -> None:
    vector = load(VECTORS / name)
    proc = subprocess.run(
        java_cmd, input=json.dumps(vector).encode(), capture_output=True, timeout=RUN_TIMEOUT_S, check=False
    )
    assert_answer(vector, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def test_driver_fails_apart_from_refusals(java_cmd: list[str]) -> None:
    proc = subprocess.run(java_cmd, input=b"not json", capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
    assert proc.returncode == 2 and proc.stdout == b""
    assert b"conformance driver failed" in proc.stderr
