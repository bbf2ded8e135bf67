// SPDX-License-Identifier: MIT
package io.zeromesh;

/** A deadline passed: the broker answered "timeout", or nothing came back in time. Code "timeout". */
public class TimeoutException extends ZeromeshException {
    private static final long serialVersionUID = 1L;

    public TimeoutException(String message) {
        super(Wire.E_TIMEOUT, message);
    }
}
