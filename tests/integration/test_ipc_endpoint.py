# SPDX-License-Identifier: MIT
"""A broker bound to an ipc:// endpoint (a mesh on one machine; docs/PERFORMANCE.md measures it
against loopback TCP): clients and workers reach it there for every verb."""

from __future__ import annotations

import shutil
import tempfile
import threading

import pytest

from zeromesh import Client, Job

from ..conftest import scaled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def ipc_broker(broker_factory):
    # A short folder of our own: a unix socket's path is limited to 107 bytes, and pytest's
    # tmp_path under xdist can come near that.
    folder = tempfile.mkdtemp(prefix="zm-ipc-")
    yield broker_factory(endpoint=f"ipc://{folder}/broker.sock")
    shutil.rmtree(folder, ignore_errors=True)


def test_requests_pushes_and_status_over_ipc(ipc_broker, start_worker):
    ran: list[bytes] = []
    ran_all = threading.Event()

    def record(job: Job) -> None:
        ran.append(job.body)
        if len(ran) == 200:
            ran_all.set()

    start_worker(ipc_broker.endpoint, {"echo": lambda job: job.body, "jobs": record}, concurrency=2, label="ipc-worker")
    with Client(ipc_broker.endpoint, ipc_broker.pub_endpoint, green=False) as client:
        assert client.request("echo", b"over ipc", timeout=scaled(5)) == b"over ipc"
        ids = client.push_many("jobs", [b"%d" % i for i in range(200)])
        assert len(set(ids)) == 200
        assert ran_all.wait(scaled(10)), f"{len(ran)} of 200 jobs ran"
        assert sorted(ran) == sorted(b"%d" % i for i in range(200))
        # A job's ACK leaves after its handler returns: the last ones may still be on their way.
        wait_until(
            lambda: client.status()["queues"]["jobs"]["acked"] == 200,
            scaled(5),
            message=lambda: f"acked {client.status()['queues']['jobs']['acked']} of 200",
        )
        status = client.status()
    assert "ipc-worker" in {w["label"] for w in status["workers"]}
