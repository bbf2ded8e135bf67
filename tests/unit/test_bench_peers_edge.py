# SPDX-License-Identifier: MIT
"""bench/peers/table.py: issue 20's three edge verdicts, and the wrk latency figures they read."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.unit


def _load(name: str, path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the classes
    spec.loader.exec_module(module)
    return module


table = _load("bench_peers_table_edge", "bench/peers/table.py")
sys.path.insert(0, str(ROOT / "bench"))  # http_bench imports harness as the bench's scripts do
http_bench = _load("bench_http_bench", "bench/http_bench.py")

EDGE = {
    "edge-bare": {"rate": 10_000.0, "p50_us": 4_000.0, "p99_us": 20_000.0},
    "edge-rendered": {"rate": 4_000.0, "p50_us": 11_000.0, "p99_us": 35_000.0},
    "edge-gathered": {"rate": 3_000.0, "p50_us": 15_000.0, "p99_us": 52_000.0},
}


def _outcome(what_starts: str, medians: dict[str, dict[str, float]] = EDGE) -> Any:
    ratio = next(r for r in table.RATIOS if r.what.startswith(what_starts))
    return table.evaluate(ratio, medians)


def test_gathered_page_at_30_percent_of_bare_is_met() -> None:
    got = _outcome("edge, card page with 3 gathered parts")
    assert got.against == "edge-bare"
    assert got.value == pytest.approx(0.30) and got.verdict == "met"
    assert table.format_ratio(got).endswith(": 0.30x edge-bare (need >= 0.30x): met")
    slower = dict(EDGE, **{"edge-gathered": {"rate": 2_900.0, "p99_us": 40_000.0}})
    assert _outcome("edge, card page", slower).verdict == "NOT met"


def test_rendered_page_needs_half_the_bare_rate() -> None:
    got = _outcome("edge, rendered page")
    assert got.value == pytest.approx(0.40) and got.verdict == "NOT met"
    faster = dict(EDGE, **{"edge-rendered": {"rate": 5_000.0, "p99_us": 30_000.0}})
    assert _outcome("edge, rendered page", faster).verdict == "met"


def test_gathered_p99_is_held_to_50_ms() -> None:
    got = _outcome("edge, gathered page p99")
    assert got.value == 52_000.0 and got.verdict == "NOT met"
    assert table.format_ratio(got).endswith(": 52,000 us (< 50,000 us): NOT met")
    quick = dict(EDGE, **{"edge-gathered": {"rate": 3_000.0, "p99_us": 49_999.0}})
    assert _outcome("edge, gathered page p99", quick).verdict == "met"


def test_edge_verdicts_wait_for_the_bare_baseline() -> None:
    medians = {k: v for k, v in EDGE.items() if k != "edge-bare"}
    assert _outcome("edge, card page", medians).verdict == "not measured"
    assert _outcome("edge, rendered page", medians).verdict == "not measured"


@pytest.mark.parametrize(
    ("text", "ms"), [("812.00us", 0.812), ("39.87ms", 39.87), ("1.02s", 1020.0), ("2.00m", float("nan"))]
)
def test_wrk_latency_in_milliseconds(text: str, ms: float) -> None:
    assert http_bench.milliseconds(text) == pytest.approx(ms, nan_ok=True)
