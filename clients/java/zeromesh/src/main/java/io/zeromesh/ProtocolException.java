// SPDX-License-Identifier: MIT
package io.zeromesh;

/** Frames that break ZMSH/1; {@link #code()} is bad_frame, bad_version, unknown_command, bad_header or too_large. */
public class ProtocolException extends ZeromeshException {
    private static final long serialVersionUID = 1L;

    public ProtocolException(String code, String message) {
        super(code, message);
    }
}
