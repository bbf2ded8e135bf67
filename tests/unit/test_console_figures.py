# SPDX-License-Identifier: MIT
"""The console's pure figures: percentiles from histogram buckets, rates, history, alarms, trace trees."""

from __future__ import annotations

import math

import pytest

from zeromesh.console import alarms
from zeromesh.console.figures import History, Sample, bucket_delta, quantile
from zeromesh.console.tracing_view import tree

BOUNDS = [0.001, 0.01, 0.1, 1.0]


def test_quantile_interpolates_inside_the_bucket_it_falls_in():
    # 10 answers <= 1 ms, 10 more <= 10 ms, nothing above: the median is the 1 ms bound,
    # p75 halfway through the second bucket, p99 near its top.
    cumulative = [10, 20, 20, 20, 20]
    assert quantile(0.5, cumulative, BOUNDS) == pytest.approx(0.001)
    assert quantile(0.75, cumulative, BOUNDS) == pytest.approx(0.001 + 0.009 * 0.5)
    assert quantile(0.99, cumulative, BOUNDS) == pytest.approx(0.001 + 0.009 * 0.98)
    assert quantile(0.25, cumulative, BOUNDS) == pytest.approx(0.0005)


def test_quantile_without_answers_and_past_the_last_bound():
    assert quantile(0.5, [0, 0, 0, 0, 0], BOUNDS) is None
    assert quantile(0.5, [], BOUNDS) is None
    assert math.isinf(quantile(0.99, [0, 0, 0, 90, 100], BOUNDS))
    assert quantile(0.5, [0, 0, 0, 90, 100], BOUNDS) == pytest.approx(0.1 + 0.9 * 50 / 90)


def test_bucket_delta_counts_what_happened_between_two_statuses_and_survives_a_restart():
    assert bucket_delta([5, 9, 9], [2, 3, 3]) == [3, 6, 6]
    assert bucket_delta([1, 1, 1], [5, 9, 9]) == [1, 1, 1]  # the broker restarted: counts began again
    assert bucket_delta([1, 2], None) == [1, 2]


def _service(requested: int, buckets: list[int], timeouts: int = 0) -> dict:
    return {"requested": requested, "timeouts": timeouts, "buckets": buckets, "bounds": BOUNDS}


def test_service_figures_use_the_last_minute_only():
    h = History()
    key = ("main", "render")
    # A slow minute long ago, then a fast last minute: p99 reflects the fast one only.
    h.add(Sample(0.0, services={key: _service(0, [0, 0, 0, 0, 0])}))
    h.add(Sample(50.0, services={key: _service(100, [0, 0, 0, 100, 100])}))
    h.add(Sample(110.0, services={key: _service(100, [0, 0, 0, 100, 100])}))
    h.add(Sample(170.0, services={key: _service(160, [60, 60, 60, 160, 160])}))
    figures = h.service_figures(key)
    assert figures["rate"] == pytest.approx(1.0)
    assert figures["p50_ms"] == pytest.approx(1000 * 0.001 * 30 / 60)
    assert figures["p99_ms"] == pytest.approx(1000 * 0.001 * 59.4 / 60)


def test_past_the_last_bound_the_percentile_is_a_text_since_json_has_no_infinity():
    h = History()
    key = ("main", "slow")
    h.add(Sample(0.0, services={key: _service(0, [0, 0, 0, 0, 0])}))
    h.add(Sample(1.0, services={key: _service(3, [0, 0, 0, 0, 3])}))
    assert h.service_figures(key)["p99_ms"] == "> 1000"


def test_rates_and_the_history_bound():
    h = History(keep_s=10)
    for t in range(30):
        h.add(Sample(float(t), totals={"enqueued": 5 * t, "acked": 0}))
    assert len(h.samples) == 11 and h.samples[0].t == 19.0
    rates = h.rates()
    assert rates["enqueued"] == [5.0] * 10 and len(rates["t"]) == 10
    assert h.last_rate("enqueued") == 5.0 and h.last_rate("acked") == 0.0


def _depths(h: History, series: list[int], start: float = 0.0) -> None:
    for i, depth in enumerate(series):
        h.add(Sample(start + i * 5.0, depths={("main", "cards"): depth}))


def test_a_queue_that_grew_for_30_s_raises_an_alarm_and_one_that_dipped_does_not():
    grew = History()
    _depths(grew, [1, 2, 2, 3, 5, 8, 9])  # 30 s, never falling
    assert alarms.growing_queues(grew) == [("main", "cards")]
    dipped = History()
    _depths(dipped, [1, 2, 3, 2, 5, 8, 9])
    assert alarms.growing_queues(dipped) == []
    short = History()
    _depths(short, [1, 2, 3, 4, 5])  # 20 s only
    assert alarms.growing_queues(short) == []
    flat = History()
    _depths(flat, [4, 4, 4, 4, 4, 4, 4])
    assert alarms.growing_queues(flat) == []


def test_a_service_whose_timeouts_rose_raises_an_alarm():
    h = History()
    key = ("main", "render")
    h.add(Sample(0.0, services={key: _service(10, [0] * 5, timeouts=2)}))
    h.add(Sample(30.0, services={key: _service(20, [0] * 5, timeouts=2)}))
    assert alarms.timing_out(h) == []
    h.add(Sample(31.0, services={key: _service(21, [0] * 5, timeouts=5)}))
    assert alarms.timing_out(h) == [("main", "render", 3)]
    h.add(Sample(120.0, services={key: _service(30, [0] * 5, timeouts=5)}))
    assert alarms.timing_out(h) == []  # none in the last minute


def test_all_alarms_name_missing_brokers_and_redis_down():
    brokers = [
        {"name": "east", "endpoint": "tcp://e:1", "up": False, "since": "10:00:00", "redis": None},
        {"name": "west", "endpoint": "tcp://w:1", "up": True, "since": "", "redis": {"enabled": True, "up": False}},
        {"name": "north", "endpoint": "tcp://n:1", "up": True, "since": "", "redis": {"enabled": False, "up": False}},
    ]
    said = alarms.all_alarms(History(), brokers)
    assert said == [
        "broker east at tcp://e:1 missing: not answering since 10:00:00",
        "broker west: Redis down (not connected)",
    ]


def test_trace_tree_by_parent_each_message_once_and_orphans_at_the_root():
    events = [
        {"id": "page", "kind": "request", "service": "render", "event": "accepted"},
        {"id": "a", "parent": "page", "kind": "request", "service": "ads", "event": "accepted"},
        {"id": "job", "parent": "a", "kind": "job", "queue": "mail", "event": "accepted"},
        {"id": "a", "parent": "page", "kind": "request", "service": "ads", "event": "replied"},
        {"id": "lost", "parent": "gone", "kind": "job", "queue": "x", "event": "accepted"},
    ]
    assert tree(events) == [
        (0, "page", "request", "render"),
        (1, "a", "request", "ads"),
        (2, "job", "job", "mail"),
        (0, "lost", "job", "x"),
    ]
