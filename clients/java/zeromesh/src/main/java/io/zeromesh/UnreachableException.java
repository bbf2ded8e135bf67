// SPDX-License-Identifier: MIT
package io.zeromesh;

/**
 * Nothing answered at the broker's address at the transport level (no connection) for the
 * client's connect timeout while a call waited. Code "unreachable"; the message starts with
 * "cannot reach the broker at ADDR". For pushes it adds how many jobs were not confirmed
 * ({@link #getUnconfirmed()} lists them).
 */
public class UnreachableException extends ZeromeshException {
    private static final long serialVersionUID = 1L;

    public UnreachableException(String message) {
        super("unreachable", message);
    }

    /** "cannot reach the broker at ADDR (no connection for N ms)": for a call. */
    static UnreachableException call(String endpoint, long connectTimeoutMs) {
        return new UnreachableException("cannot reach the broker at " + endpoint + " (no connection for "
                + connectTimeoutMs + " ms)");
    }

    /** "cannot reach the broker at ADDR (N job(s) not confirmed)": for pushes. */
    static UnreachableException pushes(String endpoint, int unconfirmed) {
        return new UnreachableException("cannot reach the broker at " + endpoint + " (" + unconfirmed
                + " job(s) not confirmed)");
    }
}
