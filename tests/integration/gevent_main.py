# SPDX-License-Identifier: MIT
"""Run as a script by test_client_resilience.py: the client and worker in a gevent-patched process.

patch_all() comes first, as in any gevent entry point. 20 greenlets share one
green Client; the Worker's threads must still be real OS threads.
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from zeromesh import Client, Job, Worker  # noqa: E402


def main(endpoint: str) -> int:
    worker = Worker(endpoint, concurrency=2, label="green-worker")

    @worker.handler("gecho")
    def gecho(job: Job) -> bytes:
        end = time.perf_counter() + 0.002  # a little CPU, in a real thread
        while time.perf_counter() < end:
            pass
        return job.body

    worker.start()
    client = Client(endpoint)
    assert client.green, "a patched process gets a green client"

    def caller(n: int) -> int:
        for i in range(10):
            body = f"{n}:{i}".encode()
            got = client.request("echo", body, timeout=5)
            assert got == body, (got, body)
            assert client.request("gecho", body, timeout=5, wait=True) == body
        return n

    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(1000)])
    jobs = [gevent.spawn(caller, n) for n in range(20)]
    gevent.joinall(jobs, timeout=30, raise_error=True)
    assert sorted(j.value for j in jobs) == list(range(20))
    assert len(client.push_many("green-q", [b"x"] * 500)) == 500
    assert len(ticks) > 5, "the hub kept running while greenlets waited"
    ticker.kill()
    client.close()
    worker.stop(grace=2)
    print("ok", len(ticks))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
