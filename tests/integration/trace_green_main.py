# SPDX-License-Identifier: MIT
"""Run as a script by test_traces.py: a Worker(pool="gevent") whose handlers push a child job
each, in a gevent-patched process. The handlers yield to each other between reading their job
and pushing, so a context leaking from one greenlet to another would give a child the wrong parent."""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

import gevent  # noqa: E402

from zeromesh import Client, Job, Worker  # noqa: E402


def main(endpoint: str) -> int:
    client = Client(endpoint)
    assert client.green, "a patched process gets a green client"
    worker = Worker(endpoint, pool="gevent", concurrency=8, label="trace-green")

    @worker.handler("tg-parent")
    def parent(job: Job) -> None:
        gevent.sleep(0.05)  # the other handlers run meanwhile
        client.push("tg-child", job.id.encode())

    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
