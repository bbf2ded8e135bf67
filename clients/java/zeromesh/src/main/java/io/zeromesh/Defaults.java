// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.time.Duration;

/**
 * Defaults shared with the broker and the other clients (protocol/defaults.py).
 * The library reads only ZEROMESH_CURVE_SERVER and ZEROMESH_CURVE_SECRET from the environment
 * (when a builder is given neither CURVE setting), so keys reach every program the same way;
 * programs pass ZEROMESH_BROKER and ZEROMESH_PUB in when they want them.
 */
public final class Defaults {
    private Defaults() {}

    /** ROUTER endpoint for clients and workers (what ZEROMESH_BROKER overrides; a comma-separated list names several brokers). */
    public static final String BROKER_ENDPOINT = "tcp://127.0.0.1:5555";
    /** PUB endpoint for subscribers (what ZEROMESH_PUB overrides). */
    public static final String PUB_ENDPOINT = "tcp://127.0.0.1:5556";
    /** Largest body the broker accepts by default; the client refuses larger ones before sending. */
    public static final int MAX_MESSAGE = 16 * 1024 * 1024;
    /** Interval between heartbeats of a worker (SPEC.md section 11). */
    public static final Duration HEARTBEAT = Duration.ofSeconds(1);
    /** Heartbeat intervals without any traffic after which a peer counts as dead. */
    public static final int HEARTBEAT_LIVENESS = 3;
    /** Default deadline of a request. */
    public static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(5);
    /** How long past a request's deadline the client waits for the broker's own timeout ERROR. */
    public static final Duration REQUEST_MARGIN = Duration.ofSeconds(1);
    /** A producer gives up on a push that stays unconfirmed this long. */
    public static final Duration PUSH_TIMEOUT = Duration.ofSeconds(10);
    /** How long the queue controls (pause, resume, purgeQueue, scheduled, cancel, schedules) wait for the broker. */
    public static final Duration ADMIN_TIMEOUT = Duration.ofSeconds(5);
    /** An unconfirmed push is sent again, with the same id, after this long. */
    public static final Duration PUSH_RESEND = Duration.ofSeconds(2);
    /** How long closing a client waits for what it already sent to leave. */
    public static final Duration CLIENT_LINGER = Duration.ofSeconds(1);
    /** How long a call waits without any live connection to the broker before it fails as unreachable. */
    public static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(1);
    /** With several brokers, a client moves to the next after this long without a live connection (ZEROMESH_FAILOVER_S). */
    public static final Duration FAILOVER = Duration.ofSeconds(3);
    /** Jobs per PUSH_PACKED (or PUSH_BATCH, PUSH) message when pushing many; Python's and Ruby's push_many batch. */
    public static final int PUSH_BATCH = 250;
    /** Unconfirmed jobs at once when pushing many; Python's and Ruby's push_many window. */
    public static final int PUSH_WINDOW = 5000;
    /** Handler threads of a worker; its credit defaults to 4 times this. */
    public static final int WORKER_CONCURRENCY = 4;
    /** How long close() lets running handlers finish. */
    public static final Duration WORKER_GRACE = Duration.ofSeconds(10);
    /** Deliveries of a Redis job before it is dead-lettered (as the broker's max_attempts). */
    public static final int REDIS_MAX_ATTEMPTS = 5;
    /** A direct Redis consumer whose heartbeat is older than this is dead (its jobs are recovered). */
    public static final Duration REDIS_RECOVERY_TIMEOUT = Duration.ofSeconds(30);
    /** How often a direct Redis consumer refreshes its heartbeat. */
    public static final Duration REDIS_HEARTBEAT = Duration.ofSeconds(5);
    /** How long a Redis push waits for replicas to take it (WAIT), as the broker does. */
    public static final Duration REDIS_WAIT = Duration.ofMillis(500);
}
