# SPDX-License-Identifier: MIT
"""Run as a script by test_render_pool.py: a Worker(pool="gevent") in a patched process.

Services: "nap" (gevent.sleep(float(body)), replies the body), "burn" (busy
CPU for float(body) seconds in the greenlet: the hub is blocked, the beat
thread must keep heartbeating) and "ping" (replies at once); the queue
"nap-job" sleeps like "nap" and acks. With --unpatched it skips patch_all()
and must fail fast.
"""

import sys

if "--unpatched" not in sys.argv:
    from gevent import monkey

    monkey.patch_all()

import argparse
import logging
import time

import gevent

from zeromesh import Job, Worker


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--label", default="green")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--credit", type=int, default=None)
    parser.add_argument("--heartbeat", type=float, default=None)
    parser.add_argument("--unpatched", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    extra = {"heartbeat_s": args.heartbeat} if args.heartbeat else {}
    worker = Worker(
        args.endpoint, concurrency=args.concurrency, credit=args.credit, label=args.label, pool="gevent", **extra
    )

    @worker.handler("nap-job")
    def nap_job(job: Job) -> None:
        gevent.sleep(float(job.body))

    @worker.handler("nap")
    def nap(job: Job) -> bytes:
        gevent.sleep(float(job.body))
        return job.body

    @worker.handler("burn")
    def burn(job: Job) -> bytes:
        end = time.perf_counter() + float(job.body)
        n = 0
        while time.perf_counter() < end:  # never yields
            n += 1
        return b"burnt %d" % n

    @worker.handler("ping")
    def ping(job: Job) -> bytes:
        return b"pong"

    try:
        worker.start()
    except RuntimeError as exc:
        print(f"refused: {exc}", file=sys.stderr, flush=True)
        return 3
    worker.run(grace=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
