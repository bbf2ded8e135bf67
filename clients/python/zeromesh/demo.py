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

from .display import body_text
from .job import Job
from .worker import Worker

log = logging.getLogger("zeromesh.demo")


def shown(body: bytes, limit: int = 200) -> str:
    """A body as log text: UTF-8 as itself on one line (cut at `limit` characters), else base64."""
    text, is_base64 = body_text(body)
    if is_base64:
        return f"{len(body)} bytes, not UTF-8: base64 {text[:limit]}"
    one_line = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return one_line if len(one_line) <= limit else one_line[:limit] + f"... ({len(body)} bytes)"


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
        log.info("job %s (attempt %d): %s", job.id, job.attempt, shown(job.body))

    return worker


def main(argv: list[str] | None = None) -> int:
    from .cli.logs import setup_logging

    parser = argparse.ArgumentParser(
        prog="python -m zeromesh.demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoint", help="broker endpoint (overrides ZEROMESH_BROKER)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (env ZEROMESH_LOG_LEVEL, default INFO)")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    worker = build_worker(args.endpoint, args.concurrency)
    log.info("demo worker serving echo, upper and queue demo on %s", worker.endpoint)
    worker.run()  # until SIGTERM/SIGINT
    return 0


if __name__ == "__main__":
    sys.exit(main())
