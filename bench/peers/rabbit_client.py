# SPDX-License-Identifier: MIT
"""RabbitMQ work queue with manual acks, pika's BlockingConnection, in spawned processes.

The counterpart of zeromesh's acked push (`push-mesh`): one producer process publishes n
100-byte messages to a transient queue on the default exchange (no publisher confirms);
one consumer process (prefetch PREFETCH) acks each message with basic_ack as it handles
it. The rate is n / (the consumer's last ack - the producer's first publish), on the
system-wide monotonic clock, as push-mesh measures from push_many's call to the last job
handled. The queue is declared by the consumer before the producer starts and deleted at
the end.
"""

from __future__ import annotations

import os
import time
from multiprocessing.connection import Connection
from typing import Any

from harness import BenchError, body, recv_within, start_child, stop_children

PREFETCH = 1000
"""Unacked messages the consumer may hold (zeromesh's push workers get credit=1000 too)."""


def _connect(port: int) -> Any:
    import pika

    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, heartbeat=0))


def _consumer_main(conn: Connection, port: int, queue: str, n: int, timeout: float) -> None:
    connection = _connect(port)
    channel = connection.channel()
    channel.queue_declare(queue, durable=False, auto_delete=False)
    channel.basic_qos(prefetch_count=PREFETCH)
    handled = 0
    last = 0.0
    clock = time.monotonic

    def on_message(ch: Any, method: Any, properties: Any, data: bytes) -> None:
        nonlocal handled, last
        ch.basic_ack(method.delivery_tag)
        handled += 1
        last = clock()

    channel.basic_consume(queue, on_message, auto_ack=False)
    conn.send("ready")
    deadline = clock() + timeout
    while handled < n and clock() < deadline:
        connection.process_data_events(time_limit=0.2)
    channel.queue_delete(queue)
    connection.close()
    if handled < n:
        raise BenchError(f"RabbitMQ consumer got {handled} of {n} messages within {timeout:g}s")
    conn.send(last)


def _producer_main(conn: Connection, port: int, queue: str, n: int) -> None:
    import pika

    connection = _connect(port)
    channel = connection.channel()
    payload = body()
    publish = channel.basic_publish
    props = pika.BasicProperties(delivery_mode=1)  # transient, as zeromesh's in-memory queue
    t0 = time.monotonic()
    for _ in range(n):
        publish("", queue, payload, props)
    connection.close()  # flushes what is still buffered
    conn.send(t0)


def manual_ack(port: int, n: int) -> dict:
    """Messages per second through RabbitMQ, one producer to one consumer acking each message."""
    queue = f"zeromesh-bench-{os.getpid()}-{time.monotonic_ns()}"
    timeout = 60 + n / 2000
    consumer, consumer_conn = start_child(_consumer_main, port, queue, n, timeout)
    procs = [consumer]
    try:
        recv_within(consumer_conn, 30, "RabbitMQ consumer")
        producer, producer_conn = start_child(_producer_main, port, queue, n)
        procs.append(producer)
        t0 = recv_within(producer_conn, timeout, "RabbitMQ producer")
        last = recv_within(consumer_conn, timeout + 10, "RabbitMQ consumer's last ack")
    finally:
        stop_children(procs)
    if last <= t0:
        raise BenchError("RabbitMQ consumer measured no time")
    return {"rate": n / (last - t0), "messages": n}
