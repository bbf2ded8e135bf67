# SPDX-License-Identifier: MIT
"""docs/METRICS.md lists exactly what the broker's collector exposes, and the Grafana dashboard
asks only for those metrics."""

from __future__ import annotations

import json
import re

from zeromesh.broker.metrics_server import SnapshotCollector, SnapshotHolder
from zeromesh.broker.metrics_snapshot import QueueFigures, ServiceFigures, Snapshot, WorkerFigures
from zeromesh.broker.service_stats import LATENCY_BOUNDS_S

from ..conftest import ROOT

DOC = ROOT / "docs" / "METRICS.md"
DASHBOARD = ROOT / "docs" / "grafana" / "zeromesh-broker.json"


def exposed() -> set[str]:
    holder = SnapshotHolder()
    buckets = tuple(range(1, len(LATENCY_BOUNDS_S) + 2))
    holder.current = Snapshot(
        "main",
        0.0,
        (QueueFigures("q", 1, 2, 3, 4, 5, 6, True, 7, 8, 9, 10, 1.5),),
        (ServiceFigures("s", 5, 4, 1, 0, 1, (("timeout", 1),), buckets, 0.5, len(LATENCY_BOUNDS_S) + 1),),
        (WorkerFigures("python", "w1", 4, 1, "box-1"),),
        True,
        True,
        0.4,
        (("bad_input.bad_frame", 1), ("spilled", 2)),
        1,
    )
    names = set()
    for family in SnapshotCollector(holder).collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
        assert family.samples, family.name  # each family has figures for this snapshot
        assert all(s.labels.get("broker") == "main" for s in family.samples), family.name
    return names


def documented() -> set[str]:
    return set(re.findall(r"^\| `(zeromesh_[a-z_]+)` \|", DOC.read_text(encoding="utf-8"), re.M))


def test_the_metrics_reference_lists_every_metric_and_no_other():
    assert documented() == exposed()


def test_the_dashboard_asks_for_documented_metrics_only():
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    asked = {re.sub(r"_(bucket|count|sum)$", "", m) for e in exprs for m in re.findall(r"zeromesh_[a-z_]+", e)}
    assert asked and asked <= documented(), asked - documented()
