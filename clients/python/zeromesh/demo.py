# SPDX-License-Identifier: MIT
"""A small demo worker: `python -m zeromesh.demo` (broker from ZEROMESH_BROKER).

Serves service "echo" (returns the body), service "upper" (upper-cases UTF-8
text) and queue "demo" (logs each job). Try, with a broker running:

    zeromesh request echo hello
    zeromesh request upper hello
    zeromesh push demo "some work"
"""
from __future__ import annotations

import argparse
import logging
import sys

from .job import Job
from .worker import Worker

log = logging.getLogger("zeromesh.demo")


def build_worker(endpoint: str | None = None, concurrency: int = 4) -> Worker:
    worker = Worker(endpoint, concurrency=concurrency, label="demo")

    @worker.handler("echo")
    def echo(job: Job) -> bytes:
        return job.body

    @worker.handler("upper")
    def upper(job: Job) -> str:
        return job.text.upper()

    @worker.handler("demo")
    def demo(job: Job) -> None:
        log.info("job %s (attempt %d): %r", job.id, job.attempt, job.body[:200])

    return worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zeromesh.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", help="broker endpoint (overrides ZEROMESH_BROKER)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    worker = build_worker(args.endpoint, args.concurrency)
    log.info("demo worker serving echo, upper and queue demo on %s", worker.endpoint)
    worker.run()  # until SIGTERM/SIGINT
    return 0


if __name__ == "__main__":
    sys.exit(main())
