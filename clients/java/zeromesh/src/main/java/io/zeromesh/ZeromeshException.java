// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.List;

/** Root of every zeromesh error. {@link #code()} is a protocol error code (SPEC.md section 9) or a local one. */
public class ZeromeshException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String code;
    private List<String> accepted = List.of();
    private List<UnconfirmedJob> unconfirmed = List.of();

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

    /** For a failed push or pushMany: the ids the broker confirmed, in the order given; else empty. */
    public List<String> getAccepted() {
        return accepted;
    }

    /**
     * For a failed push or pushMany: the jobs the broker did not confirm (refused, unanswered or
     * never sent), as (id, body) in the order given; else empty.
     */
    public List<UnconfirmedJob> getUnconfirmed() {
        return unconfirmed;
    }

    /** Attach a push's outcome; the exception must belong to that one call. */
    ZeromeshException withPushOutcome(List<String> accepted, List<UnconfirmedJob> unconfirmed) {
        this.accepted = List.copyOf(accepted);
        this.unconfirmed = List.copyOf(unconfirmed);
        return this;
    }
}
