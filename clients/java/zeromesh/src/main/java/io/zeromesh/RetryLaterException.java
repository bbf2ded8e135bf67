// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.time.Duration;

/**
 * Throw from a job handler to retry the job after {@link #delay()} instead of the queue's backoff
 * (NACK with retry_in_ms, SPEC.md section 6): e.g. a provider that answered "try again in 30 s".
 * The attempt still counts towards the queue's max_attempts.
 */
public class RetryLaterException extends Exception {
    private static final long serialVersionUID = 1L;
    private final Duration delay;

    /** @throws IllegalArgumentException a negative delay */
    public RetryLaterException(Duration delay, String message) {
        this(delay, message, null);
    }

    /** @throws IllegalArgumentException a negative delay */
    public RetryLaterException(Duration delay, String message, Throwable cause) {
        super(message, cause);
        if (delay.isNegative()) {
            throw new IllegalArgumentException("a retry delay must be zero or more, got " + delay);
        }
        this.delay = delay;
    }

    /** How long the job waits before its next attempt. */
    public Duration delay() {
        return delay;
    }
}
