// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.Map;

/** What handler threads (and the Worker) hand to the worker's I/O thread through the {@link Outbox}. */
sealed interface WorkerResult {
    record Ack(Job job) implements WorkerResult {}

    /** {@code retryInMs}: the wait before the next attempt the handler asked for; null: the queue's backoff. */
    record Nack(Job job, String error, boolean retry, Long retryInMs) implements WorkerResult {}

    /** A request's REPLY. */
    record Answer(Job job, byte[] body) implements WorkerResult {}

    /** A request's ERROR (code remote or cancelled). */
    record Failure(Job job, Map<String, Object> fields) implements WorkerResult {}

    /**
     * A job not started: the worker is stopping (DISCONNECT hands it back), or it came on a
     * connection since replaced (abandoned: the broker hands it to someone else).
     */
    record Skipped(Job job) implements WorkerResult {}

    record Extend(Job job, long leaseMs) implements WorkerResult {}

    record Stop(long graceNanos) implements WorkerResult {}

    /** The job a finished result is about (not for Extend and Stop). */
    static Job jobOf(WorkerResult result) {
        if (result instanceof Ack a) {
            return a.job();
        } else if (result instanceof Nack n) {
            return n.job();
        } else if (result instanceof Answer a) {
            return a.job();
        } else if (result instanceof Failure f) {
            return f.job();
        }
        return ((Skipped) result).job();
    }
}
