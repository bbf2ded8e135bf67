# SPDX-License-Identifier: MIT
"""Every case of protocol/vectors/gaps.json through the Python subscriber's GapTracker (SPEC 7).
Ruby and Java run the same file in their own suites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zeromesh.subscription import GapTracker

pytestmark = pytest.mark.conformance

CASES = json.loads((Path(__file__).parents[2] / "protocol" / "vectors" / "gaps.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_gap_rules(case):
    tracker = GapTracker()
    assert [tracker.observe(*event) for event in case["events"]] == case["gaps"]
