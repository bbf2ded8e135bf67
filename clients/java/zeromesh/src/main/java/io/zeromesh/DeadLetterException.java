// SPDX-License-Identifier: MIT
package io.zeromesh;

/** Throw from a job handler to dead-letter the job at once (NACK with retry false) instead of retrying it. */
public class DeadLetterException extends Exception {
    private static final long serialVersionUID = 1L;

    public DeadLetterException(String message) {
        super(message);
    }

    public DeadLetterException(String message, Throwable cause) {
        super(message, cause);
    }
}
