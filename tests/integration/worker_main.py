# SPDX-License-Identifier: MIT
"""A worker process for the integration tests (run as a script, not collected).

Serves the --queue names; each job records "start ID ATTEMPT", sleeps --sleep
seconds, then records "done ID". Runs until SIGTERM/SIGINT (Worker.run()).
With --gevent the process is monkey-patched first and runs Worker(pool="gevent").
"""

import sys

if "--gevent" in sys.argv:
    from gevent import monkey

    monkey.patch_all()

import argparse
import logging
import os
import threading
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--queue", action="append", default=[])
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--credit", type=int)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--heartbeat", type=float)
    parser.add_argument("--gevent", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    from zeromesh import Job, Worker

    lock = threading.Lock()
    fd = os.open(args.record, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def record(line: str) -> None:
        with lock:
            os.write(fd, (line + "\n").encode())  # unbuffered: survives SIGKILL

    extra = {"heartbeat_s": args.heartbeat} if args.heartbeat else {}
    worker = Worker(
        args.endpoint,
        concurrency=args.concurrency,
        credit=args.credit,
        label=args.label,
        pool="gevent" if args.gevent else "thread",
        **extra,
    )

    def handle(job: Job) -> None:
        record(f"start {job.id} {job.attempt}")
        if args.sleep:
            time.sleep(args.sleep)
        record(f"done {job.id}")

    for name in args.queue:
        worker.handler(name)(handle)
    worker.run(grace=args.grace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
