# SPDX-License-Identifier: MIT
"""bench/peers/table.py: issue 20's ratios and the table, from made-up medians (no peers run here)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.unit


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_peers_table", ROOT / "bench" / "peers" / "table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the classes
    spec.loader.exec_module(module)
    return module


table = _load()

MEDIANS = {
    "push-raw": {"rate": 1_000_000.0},
    "push-mesh": {"rate": 300_000.0},
    "rabbit-ack": {"rate": 12_000.0},
    "req-mesh-1": {"rate": 2_500.0, "p50_us": 360.0, "p99_us": 700.0},
    "nats-1": {"rate": 2_900.0, "p50_us": 330.0, "p99_us": 800.0},
    "fwd-32": {"rate": 20_000.0, "p50_us": 1_500.0, "p99_us": 3_000.0},
    "req-mesh-32": {"rate": 15_000.0, "p50_us": 2_000.0, "p99_us": 4_000.0},
    "req-mesh-32g": {"rate": 30_000.0, "p50_us": 1_000.0, "p99_us": 2_000.0},
    "nats-32": {"rate": 22_000.0, "p50_us": 1_400.0, "p99_us": 2_500.0},
    "nats-32-1p": {"rate": 24_000.0, "p50_us": 1_300.0, "p99_us": 2_400.0},
}


def _outcome(what_starts: str, medians: dict[str, dict[str, float]] = MEDIANS) -> Any:
    ratio = next(r for r in table.RATIOS if r.what.startswith(what_starts))
    return table.evaluate(ratio, medians)


def test_rate_ratio_is_against_the_faster_nats_arrangement() -> None:
    got = _outcome("request/reply, 32 greenlet callers vs NATS")
    assert got.against == "nats-32-1p"
    assert got.value == pytest.approx(30_000 / 24_000)
    assert got.verdict == "met"  # 1.25x exactly meets the target
    assert table.format_ratio(got).endswith(": 1.25x nats-32-1p (need >= 1.25x): met")


def test_thread_callers_below_nats_are_not_met() -> None:
    got = _outcome("request/reply, 32 thread callers")
    assert got.value == pytest.approx(15_000 / 24_000)
    assert got.verdict == "NOT met"


def test_latency_ratios_are_lower_is_better() -> None:
    p50 = _outcome("1 caller, p50")
    p99 = _outcome("1 caller, p99 latency vs")
    assert p50.value == pytest.approx(360 / 330) and p50.verdict == "NOT met"
    assert p99.value == pytest.approx(700 / 800) and p99.verdict == "met"
    assert "(need <= 1.00x)" in table.format_ratio(p99)


def test_figure_without_baseline_and_information_only() -> None:
    aim = _outcome("1 caller, p99 latency (aim)")
    assert aim.value == 700 and aim.verdict == "NOT met"
    assert table.format_ratio(aim) == "  1 caller, p99 latency (aim): 700 us (< 500 us): NOT met"
    rabbit = _outcome("acked push vs RabbitMQ")
    assert rabbit.value == pytest.approx(25.0) and rabbit.verdict == "for information"
    assert table.format_ratio(rabbit).endswith("25.00x rabbit-ack: for information")


def test_a_missing_side_is_not_measured() -> None:
    medians = {k: v for k, v in MEDIANS.items() if k != "nats-32"}
    got = _outcome("request/reply, 32 thread callers", medians)
    assert got.value is None and got.verdict == "not measured"
    assert table.format_ratio(got).endswith("not measured in this run")


def test_table_rows_with_and_without_latency_and_failures() -> None:
    text = table.format_table(
        [("push-raw", "raw push"), ("nats-1", "NATS, 1 caller"), ("fwd-32", "loop"), ("gone", "never ran")],
        {k: MEDIANS[k] for k in ("push-raw", "nats-1")},
    )
    lines = text.splitlines()
    assert lines[0].split() == ["scenario", "what", "msgs/s", "p50", "us", "p99", "us"]
    assert lines[1].split() == ["push-raw", "raw", "push", "1,000,000"]
    assert lines[2].split()[-3:] == ["2,900", "330", "800"]
    assert lines[3].split()[-1] == "FAILED" and lines[4].split()[-1] == "FAILED"
