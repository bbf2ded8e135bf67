# SPDX-License-Identifier: MIT
"""Run as a script by test_multi_broker.py: a green Client and a Worker(pool="gevent") on a list of
brokers, in a patched process. Prints "on ENDPOINT" once serving; the test then kills that broker.
Greenlets keep making idempotent requests; once the client has moved and requests succeed again,
it pushes a batch through the new broker and prints "ok MOVED_TO LONGEST_GAP FAILURES PUSHED"."""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from zeromesh import Client, Job, Worker, errors  # noqa: E402


def main(endpoints: str, failover_s: float) -> int:
    worker = Worker(endpoints, concurrency=10, label="green-multi", pool="gevent")
    handled: list[bytes] = []

    @worker.handler("gecho")
    def gecho(job: Job) -> bytes:
        return job.body

    @worker.handler("gq")
    def gq(job: Job) -> None:
        handled.append(job.body)

    worker.start()
    client = Client(endpoints, failover_s=failover_s)
    assert client.green
    first = client.current_endpoint
    successes: list[float] = []
    failures: list[str] = []
    stop_at = time.monotonic() + 40

    def caller(n: int) -> None:
        i = 0
        while time.monotonic() < stop_at:
            try:
                body = f"{n}:{i}".encode()
                assert client.request("gecho", body, timeout=5, idempotent=True) == body
                successes.append(time.monotonic())
            except errors.ZeromeshError as exc:
                failures.append(type(exc).__name__)
            i += 1
            if client.current_endpoint != first and len([t for t in successes if t > moved_at[0]]) > 100:
                return
            gevent.sleep(0.01)

    moved_at = [float("inf")]

    def watch() -> None:
        while client.current_endpoint == first:
            gevent.sleep(0.01)
        moved_at[0] = time.monotonic()

    while len(successes) < 20:  # serving through the first broker before it is killed
        try:
            client.request("gecho", b"warm", timeout=5, idempotent=True)
            successes.append(time.monotonic())
        except errors.ZeromeshError:
            gevent.sleep(0.05)
    print("on", first, flush=True)
    gevent.joinall([gevent.spawn(watch)] + [gevent.spawn(caller, n) for n in range(10)], timeout=45)
    gaps = [b - a for a, b in zip(successes, successes[1:])]
    ids = client.push_many("gq", [b"j%d" % i for i in range(200)], timeout=10)
    deadline = time.monotonic() + 10
    while len(handled) < len(ids) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    print("ok", client.current_endpoint, f"{max(gaps):.2f}", len(failures), len(handled), flush=True)
    client.close()
    worker.stop(grace=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
