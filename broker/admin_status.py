# SPDX-License-Identifier: MIT
"""ADMIN status: every queue, service and worker this broker knows, its Redis link and counters (SPEC 12)."""

from __future__ import annotations

from .admin_parts import Parts
from .channels import JOB
from .service_stats import LATENCY_BOUNDS_S


def status(router: Parts, args: dict, now: float) -> dict:
    state = router.state
    config = state.config
    workers = router.registry.workers
    queues = {}
    services = {}
    unused = {}
    for name, chan in sorted(state.channels.items()):
        rate_in, rate_out = chan.rates()
        held = [i for w in workers.values() for i in w.held.values() if i.channel is chan]
        # A worker's READY names a channel without saying whether it is a queue or a service:
        # traffic or the config tells. Until then a served name is listed as unused, not guessed.
        is_queue = bool(
            chan.enqueued
            or chan.jobs
            or chan.dead
            or chan.redis_depth
            or chan.redis_dead
            or chan.qconf.durable
            or chan.paused
            or chan.scheduled
            or name in config.queues
        )
        is_service = bool(chan.requested or chan.requests or name in config.services)
        if not (is_queue or is_service) and chan.workers:
            unused[name] = {"workers": len(chan.workers)}
        if is_queue:
            queues[name] = {
                "depth": len(chan.jobs) + chan.waiting + chan.redis_depth,
                "retry_waiting": chan.waiting,
                "scheduled": chan.scheduled,
                "in_memory": len(chan.jobs),
                "oldest_age_s": round(now - chan.jobs[0].enqueued_at, 3) if chan.jobs else 0.0,
                "in_redis": chan.redis_depth,
                "in_flight": sum(1 for i in held if i.kind == JOB),
                "dead_letters": len(chan.dead) + chan.redis_dead,
                "enqueued": chan.enqueued,
                "acked": chan.acked,
                "durable": chan.qconf.durable,
                "paused": chan.paused,
                "max_per_second": chan.qconf.max_per_second,
                "max_in_flight": chan.qconf.max_in_flight,
                "raw": chan.qconf.raw,
                "nacked": chan.nacked,
                "rate_in": round(rate_in, 1),
                "rate_out": round(rate_out, 1),
                "workers": len(chan.workers),
            }
        if is_service:
            services[name] = {
                "pending": chan.pending_requests(),
                "in_flight": sum(1 for i in held if i.kind != JOB),
                "requested": chan.requested,
                "answered": chan.answered,
                "workers": len(chan.workers),
                # Cumulative, like the metrics histogram: a reader takes deltas between two statuses.
                "latency": {"count": chan.svc.count, "buckets": chan.svc.cumulative(), "bounds_s": LATENCY_BOUNDS_S},
                "errors": dict(chan.svc.errors),
            }
    listed = [
        {
            "peer": w.peer.hex(),
            "label": w.label,
            "lang": w.lang,
            "host": w.host,
            "names": list(w.names),
            "credit": w.credit,
            "held": len(w.held),
            "idle_s": round(now - w.last_seen, 3),
            "up_s": round(now - w.joined, 1),
        }
        for w in workers.values()
    ]
    redis = {
        "enabled": state.redis_enabled,
        "up": state.redis_up,
        "status": state.redis_status,
        "pending_writes": len(router.spill.pending_writes),
    }
    return {
        "name": config.name,
        "epoch": state.epoch,
        "uptime_s": round(now - state.started, 1),
        "draining": state.draining,
        "redis": redis,
        "brokers": state.brokers,
        "queues": queues,
        "services": services,
        "unused": unused,
        "workers": listed,
        "counters": dict(state.counters),
    }
