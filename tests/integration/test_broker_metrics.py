# SPDX-License-Identifier: MIT
"""`zeromesh broker --metrics`: Prometheus figures that follow real traffic, per broker."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from zeromesh import Client, errors

from ..conftest import free_port, scaled, wait_until
from .wire_helpers import dealer

pytestmark = pytest.mark.timeout(60)


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_follow_queues_services_workers_and_bad_input(broker_factory, start_worker, zsocket):
    port = free_port()
    broker = broker_factory("[queues.slow]\nmax_in_flight = 1\n", args=["--metrics", f"127.0.0.1:{port}"])
    release = threading.Event()  # the slow jobs wait for the test's last look
    start_worker(broker.endpoint, {"echo": lambda job: job.body, "slow": lambda job: release.wait(scaled(20))})
    with Client(broker.endpoint) as client:
        for _ in range(5):
            assert client.request("echo", b"hi") == b"hi"
        with pytest.raises(errors.NoRespondersError):
            client.request("nobody", b"x")
        client.push_many("slow", [b"x"] * 3)
        client.push("later", b"x", delay=60)
    dealer(zsocket, broker.endpoint).send_multipart([b"not a zeromesh frame"])

    def settled() -> dict | None:
        s = scrape(port)
        ok = (
            value(s, "zeromesh_service_requests_total", broker="main", service="echo") == 5
            and value(s, "zeromesh_queue_scheduled", broker="main", queue="later") == 1
            and (value(s, "zeromesh_bad_input_total", broker="main", code="bad_frame") or 0) >= 1
        )
        return s if ok else None

    s = wait_until(settled, scaled(5), 0.2, "metrics of the traffic")
    assert value(s, "zeromesh_service_latency_seconds_count", broker="main", service="echo") == 5
    assert value(s, "zeromesh_service_latency_seconds_bucket", broker="main", service="echo", le="+Inf") == 5
    assert value(s, "zeromesh_service_errors_total", broker="main", service="nobody", code="no_responders") == 1
    assert value(s, "zeromesh_queue_enqueued_total", broker="main", queue="slow") == 3
    assert value(s, "zeromesh_queue_in_flight", broker="main", queue="slow") == 1  # max_in_flight holds it
    assert value(s, "zeromesh_queue_depth_memory", broker="main", queue="slow") == 2
    assert value(s, "zeromesh_workers", broker="main", lang="python", host=socket.gethostname()) == 1
    assert value(s, "zeromesh_redis_up", broker="main") == 1
    assert (value(s, "zeromesh_redis_rtt_seconds", broker="main") or 1) < 1
    release.set()


def test_two_brokers_each_label_their_own_figures(broker_factory):
    ports = free_port(), free_port()
    brokers = [
        broker_factory(args=["--name", name, "--metrics", f"127.0.0.1:{port}"])
        for name, port in zip(("east", "west"), ports)
    ]
    with Client(brokers[0].endpoint) as client:
        client.push("mail", b"x")

    def east_counted() -> dict | None:
        s = scrape(ports[0])
        counted = value(s, "zeromesh_queue_enqueued_total", broker="east", queue="mail")
        # The registry is read each second: east lists west once it has looked after west registered.
        return s if counted and value(s, "zeromesh_brokers_registered", broker="east") == 2 else None

    east = wait_until(east_counted, scaled(5), 0.2, "east's figures")
    assert value(east, "zeromesh_brokers_registered", broker="east") == 2
    west = scrape(ports[1])
    assert value(west, "zeromesh_queue_enqueued_total", broker="west", queue="mail") is None
    assert all(dict(labels).get("broker") in (None, "west") for _name, labels in west)


def test_a_bad_or_taken_metrics_address_stops_the_start(tmp_path):
    taken = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        for address, expected in ((f"127.0.0.1:{taken}", "cannot serve metrics on"), ("nowhere", "HOST:PORT")):
            done = subprocess.run(
                [sys.executable, "-m", "zeromesh", "broker", "--no-redis", "--endpoint", "tcp://127.0.0.1:0",
                 "--pub", "tcp://127.0.0.1:0", "--metrics", address],
                capture_output=True, text=True, timeout=scaled(20),
            )  # fmt: skip
            assert done.returncode != 0 and expected in done.stderr, (address, done.stderr)
