# SPDX-License-Identifier: MIT
"""The vector files of protocol/vectors and the driver contract's checks, shared by the
Python, Ruby and Java vector tests (protocol/vectors/README.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol" / "vectors"
# gaps.json holds subscriber cases, not frames: test_gaps.py runs it.
FILES = sorted(p for p in VECTORS.rglob("*.json") if p.name not in ("schema.json", "gaps.json"))
IDS = [p.relative_to(VECTORS).as_posix() for p in FILES]

STDIN_SAMPLES = [
    "valid/push/batch.json",
    "valid/job/big_integers.json",
    "events/valid/utf8_topic.json",
    "invalid/body_too_large.json",
    "events/invalid/missing_seq.json",
]
"""Vectors a driver with a batch mode also answers through stdin: batches, big integers, UTF-8,
a size limit, an event."""


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def batch_answers(cmd: list[str], timeout: float) -> dict[str, tuple[int, str]]:
    """Run a driver's `--batch DIR` over every vector: relative path -> (status, output)."""
    proc = subprocess.run([*cmd, "--batch", str(VECTORS)], capture_output=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    answers = {}
    for line in proc.stdout.decode("utf-8").splitlines():
        name, status, output = line.split("\t", 2)
        answers[name] = (int(status), output)
    return answers


def assert_answer(vector: dict, status: int, output: str, diagnostics: str = "") -> None:
    """A driver's answer to a vector: its decoded JSON and 0, or its error code and 1."""
    if "decoded" in vector:
        assert status == 0, diagnostics or output
        assert json.loads(output) == vector["decoded"]
    else:
        assert status == 1, diagnostics or output
        assert output.strip() == vector["error"]
