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

pytestmark = pytest.mark.conformance

ROOT = Path(__file__).resolve().parents[2]
JAVA_DIR = ROOT / "clients" / "java" / "zeromesh"  # the library module
VECTORS = ROOT / "protocol" / "vectors"
# gaps.json holds subscriber cases, not frames: test_gaps.py runs it.
FILES = sorted(p for p in VECTORS.rglob("*.json") if p.name not in ("schema.json", "gaps.json"))
IDS = [p.relative_to(VECTORS).as_posix() for p in FILES]
BUILD_TIMEOUT_S = 600  # the first build downloads the dependencies
RUN_TIMEOUT_S = 60


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


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
    proc = subprocess.run([*java_cmd, "--batch", str(VECTORS)], capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
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
def test_driver_stdin_contract(name: str, java_cmd: list[str]) -> None:
    vector = load(VECTORS / name)
    proc = subprocess.run(
        java_cmd, input=json.dumps(vector).encode(), capture_output=True, timeout=RUN_TIMEOUT_S, check=False
    )
    if "decoded" in vector:
        assert proc.returncode == 0, proc.stderr.decode()
        assert json.loads(proc.stdout) == vector["decoded"]
    else:
        assert proc.returncode == 1, proc.stderr.decode()
        assert proc.stdout.decode().strip() == vector["error"]


def test_driver_fails_apart_from_refusals(java_cmd: list[str]) -> None:
    proc = subprocess.run(java_cmd, input=b"not json", capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
    assert proc.returncode == 2 and proc.stdout == b""
    assert b"conformance driver failed" in proc.stderr
