// SPDX-License-Identifier: MIT
package io.zeromesh;

/** Root of every zeromesh error. {@link #code()} is a protocol error code (SPEC.md section 9) or a local one. */
public class ZeromeshException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String code;

    public ZeromeshException(String code, String message) {
        super(message);
        this.code = code;
    }

    public ZeromeshException(String code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    /** The error code, e.g. "bad_header", "remote", "timeout"; "error" for local failures without one. */
    public String code() {
        return code;
    }
}
