// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/** One job until the broker confirms or refuses it; its times are the I/O thread's. */
final class PendingPush {
    final String id;
    /** Its PUSH header; for a batch job null until it must go as PUSH. */
    byte[] header;
    final BatchGroup group;
    final byte[] body;
    final long timeoutNanos;
    final CompletableFuture<String> result = new CompletableFuture<>();
    /** When the I/O thread took it: an unreachable broker fails it connectTimeout after. */
    long since;
    long deadline;
    long lastSent;

    PendingPush(String id, byte[] header, byte[] body, long timeoutNanos) {
        this(id, header, null, body, timeoutNanos);
    }

    PendingPush(String id, byte[] header, BatchGroup group, byte[] body, long timeoutNanos) {
        this.id = id;
        this.header = header;
        this.group = group;
        this.body = body;
        this.timeoutNanos = timeoutNanos;
    }

    /** Settle as failed; the exception (one per job) lists this job as unconfirmed. */
    void fail(ZeromeshException e) {
        result.completeExceptionally(e.withPushOutcome(List.of(), List.of(new UnconfirmedJob(id, body))));
    }
}
