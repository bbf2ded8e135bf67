# SPDX-License-Identifier: MIT
"""The Python side of the bash client's interop tests (run by the .bats files, not collected).

    py_peer.py worker ENDPOINT RECORD --queue Q... --service S...
        Works the queues (each job: one JSON line {"queue", "id", "attempt", "body_hex"} in RECORD)
        and serves services by name: echo (the body back; without one: method, query, X-Test header),
        slow (sleeps 3 s), boom (raises), headers (the request's HTTP headers as JSON). Runs until SIGTERM.
    py_peer.py push ENDPOINT QUEUE BODY_HEX
        Pushes the body with the Python client and prints the job id.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time


def worker(endpoint: str, record: str, names: list[str]) -> int:
    from zeromesh import Job, Worker

    lock = threading.Lock()
    fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    w = Worker(endpoint, concurrency=4, label="bash-interop")

    def job(j: Job) -> None:
        line = json.dumps({"queue": j.name, "id": j.id, "attempt": j.attempt, "body_hex": j.body.hex()})
        with lock:
            os.write(fd, (line + "\n").encode())

    def echo(j: Job) -> bytes:
        if j.body:
            return j.body
        h = j.headers or {}
        return f"{h.get('http.method')} {h.get('http.query')} {h.get('http.headers', {}).get('x-test')}".encode()

    def headers(j: Job) -> bytes:
        return json.dumps((j.headers or {}).get("http.headers", {})).encode()

    def slow(j: Job) -> bytes:
        time.sleep(3)
        return b"late"

    def boom(j: Job) -> bytes:
        raise ValueError("boom")

    services = {"echo": echo, "slow": slow, "boom": boom, "headers": headers}
    for kind, name in names:
        w.handler(name)(job if kind == "queue" else services[name])
    w.start()
    if not w.wait_ready(10):
        print("py_peer: the broker did not answer READY", file=sys.stderr)
        return 1
    print("ready", flush=True)
    w.run()
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        endpoint, record, rest = argv[1], argv[2], argv[3:]
        names = [(rest[i][2:], rest[i + 1]) for i in range(0, len(rest), 2)]
        return worker(endpoint, record, names)
    if argv[:1] == ["push"]:
        from zeromesh import Client

        with Client(argv[1]) as client:
            print(client.push(argv[2], bytes.fromhex(argv[3])))
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
