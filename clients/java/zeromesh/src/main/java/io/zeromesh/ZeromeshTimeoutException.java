// SPDX-License-Identifier: MIT
package io.zeromesh;

/**
 * A deadline passed: the broker answered "timeout", or nothing came back in time. Code "timeout".
 * Named so that it does not shadow {@link java.util.concurrent.TimeoutException} in callers.
 */
public class ZeromeshTimeoutException extends ZeromeshException {
    private static final long serialVersionUID = 1L;

    public ZeromeshTimeoutException(String message) {
        super(Wire.E_TIMEOUT, message);
    }
}
