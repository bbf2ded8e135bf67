# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Zeromesh
  # Defaults shared with the broker and every other client (protocol/defaults.py).
  module Defaults
    # ROUTER endpoint for clients and workers (programs read ZEROMESH_BROKER).
    BROKER_ENDPOINT = "tcp://127.0.0.1:5555"
    # PUB endpoint for subscribers (programs read ZEROMESH_PUB).
    PUB_ENDPOINT = "tcp://127.0.0.1:5556"
    # Redis for direct queue consumption (programs read ZEROMESH_REDIS_URL).
    REDIS_URL = "redis://127.0.0.1:6379"
    # Seconds between heartbeats in each direction.
    HEARTBEAT_S = 1.0
    # Heartbeat intervals without any traffic after which a peer is declared dead.
    HEARTBEAT_LIVENESS = 3
    # Default deadline of a request, in seconds.
    REQUEST_TIMEOUT_S = 5.0
    # Extra wait past a request's timeout for the broker's own timeout ERROR to arrive.
    REQUEST_MARGIN_S = 0.5
    # How long a producer waits for the broker's CONFIRM before giving up.
    PUSH_TIMEOUT_S = 10.0
    # A call without a live connection to the broker for this long fails as unreachable.
    CONNECT_TIMEOUT_S = 1.0
    # A client of several brokers moves to the next after this long without a
    # live connection to its own (programs read ZEROMESH_FAILOVER_S).
    FAILOVER_S = 3.0
    # How long closing a client lets what it already sent go on leaving.
    LINGER_S = 1.0
    # An unconfirmed push is sent again (same id) after this long.
    PUSH_RESEND_S = 2.0
    # Handler threads of a Worker unless told otherwise.
    WORKER_CONCURRENCY = 4
    # Seconds a stopping worker waits for running handlers before DISCONNECT.
    WORKER_GRACE_S = 10.0
    # First and largest pause before reconnecting after the broker said DISCONNECT.
    RECONNECT_BACKOFF_MIN_S = 0.1
    RECONNECT_BACKOFF_MAX_S = 5.0
    # Deliveries of a Redis job before it is dead-lettered.
    REDIS_MAX_ATTEMPTS = 5
    # A Redis consumer silent for this long is dead; its in-flight jobs are recovered.
    REDIS_RECOVERY_S = 30
    # Seconds between a Redis consumer's liveness ZADDs.
    REDIS_HEARTBEAT_S = 5.0
    # How long a push waits for replicas to take it (WAIT), as the broker does.
    REDIS_WAIT_MS = 500
    # How long a RedisQueue push keeps trying while Redis cannot be reached: longer than a
    # Sentinel failover with down-after-milliseconds up to about 5 s takes.
    REDIS_RETRY_S = 15.0
  end
end
