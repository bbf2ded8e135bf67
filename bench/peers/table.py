# SPDX-License-Identifier: MIT
"""The comparison's table and issue 20's ratios, from the medians of one sitting (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

NATS_32 = ("nats-32", "nats-32-1p")
"""NATS with 32 callers, either arrangement: a zeromesh ratio is taken against the faster."""


@dataclass(frozen=True)
class Ratio:
    what: str
    scenario: str
    baselines: tuple[str, ...]
    """The ratio is against the best of these (highest rate, lowest latency); empty: the figure itself."""
    metric: str  # "rate", "p50_us" or "p99_us"
    need: float | None
    """The issue's target: a ratio, or microseconds when there is no baseline; None: for information."""

    @property
    def lower_is_better(self) -> bool:
        return self.metric != "rate"


RATIOS = [
    Ratio("request/reply, 32 greenlet callers vs NATS-py, 32 asyncio tasks", "req-mesh-32g", NATS_32, "rate", 1.25),
    Ratio("request/reply, 32 greenlets vs the bare Python forwarding loop", "req-mesh-32g", ("fwd-32",), "rate", 1.0),
    Ratio("request/reply, 32 thread callers vs NATS-py, 32 asyncio tasks", "req-mesh-32", NATS_32, "rate", 1.0),
    Ratio("1 caller, p50 latency vs NATS-py", "req-mesh-1", ("nats-1",), "p50_us", 1.0),
    Ratio("1 caller, p99 latency vs NATS-py", "req-mesh-1", ("nats-1",), "p99_us", 1.0),
    Ratio("1 caller, p99 latency (aim)", "req-mesh-1", (), "p99_us", 500.0),
    Ratio("acked push vs raw PUSH->PULL", "push-mesh", ("push-raw",), "rate", 0.40),
    Ratio("acked push vs RabbitMQ, manual ack", "push-mesh", ("rabbit-ack",), "rate", None),
    Ratio("edge, card page with 3 gathered parts vs bare pywsgi", "edge-gathered", ("edge-bare",), "rate", 0.30),
    Ratio("edge, rendered page vs bare pywsgi", "edge-rendered", ("edge-bare",), "rate", 0.50),
    Ratio("edge, gathered page p99 at 50 connections", "edge-gathered", (), "p99_us", 50_000.0),
]


@dataclass(frozen=True)
class Outcome:
    ratio: Ratio
    value: float | None
    """The ratio (or the figure in us when there is no baseline); None when a side did not run."""
    against: str
    """The baseline the ratio was taken against."""
    verdict: str  # "met", "NOT met", "for information" or "not measured"


def evaluate(ratio: Ratio, medians: dict[str, dict[str, float]]) -> Outcome:
    m = medians.get(ratio.scenario)
    if m is None or ratio.metric not in m or not all(b in medians for b in ratio.baselines):
        return Outcome(ratio, None, "", "not measured")
    value = m[ratio.metric]
    against = ""
    if ratio.baselines:
        pick = min if ratio.lower_is_better else max
        against = pick(ratio.baselines, key=lambda b: medians[b][ratio.metric])
        value /= medians[against][ratio.metric]
    if ratio.need is None:
        verdict = "for information"
    elif ratio.lower_is_better:
        verdict = "met" if value <= ratio.need else "NOT met"
    else:
        verdict = "met" if value >= ratio.need else "NOT met"
    return Outcome(ratio, value, against, verdict)


def format_ratio(outcome: Outcome) -> str:
    r = outcome.ratio
    if outcome.value is None:
        return f"  {r.what}: not measured in this run"
    if not r.baselines:
        need = f" (< {r.need:,.0f} us)" if r.need is not None else ""
        return f"  {r.what}: {outcome.value:,.0f} us{need}: {outcome.verdict}"
    sign = "<=" if r.lower_is_better else ">="
    need = f" (need {sign} {r.need:.2f}x)" if r.need is not None else ""
    return f"  {r.what}: {outcome.value:.2f}x {outcome.against}{need}: {outcome.verdict}"


def format_table(rows: list[tuple[str, str]], medians: dict[str, dict[str, float]]) -> str:
    """One line per (scenario, title): median rate, p50 and p99 (request/reply), or FAILED."""
    lines = [f"{'scenario':14} {'what':64} {'msgs/s':>10} {'p50 us':>7} {'p99 us':>7}"]
    for name, title in rows:
        m = medians.get(name)
        if m is None:
            lines.append(f"{name:14} {title:64} {'FAILED':>10}")
            continue
        p50 = f"{m['p50_us']:,.0f}" if "p50_us" in m else ""
        p99 = f"{m['p99_us']:,.0f}" if "p99_us" in m else ""
        lines.append(f"{name:14} {title:64} {m['rate']:>10,.0f} {p50:>7} {p99:>7}")
    return "\n".join(lines)
