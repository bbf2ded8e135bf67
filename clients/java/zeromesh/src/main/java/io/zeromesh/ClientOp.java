// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/** What a caller's thread hands the client's I/O thread ({@link ClientIO}) through its {@link Outbox}. */
sealed interface ClientOp {
    /**
     * Jobs to push. Without a batch header they go as PUSH messages; with one (made by the caller
     * with {@link BatchGroup#packedHeader} or {@link Codec#packHeader}, naming {@code batchId} and
     * every job's id) as that {@code command}, PUSH_PACKED or PUSH_BATCH, unless batch jobs now go
     * in a later form.
     */
    record Push(List<PendingPush> jobs, String batchId, int command, byte[] batchHeader) implements ClientOp {
        Push(List<PendingPush> jobs) {
            this(jobs, null, Wire.PUSH, null);
        }
    }

    /**
     * Send frames and complete {@code result} with the REPLY (or ERROR) whose re is {@code key}.
     * {@code again} is null unless the call may be sent to another broker when its broker is lost
     * with the call in flight (an idempotent request): it then makes the frames of the same call
     * under a new id with what is left of the deadline (nanoTime {@code deadline}) in ms.
     */
    record Call(String key, List<byte[]> frames, CompletableFuture<Item> result, Again again, long deadline)
            implements ClientOp {
        Call(String key, List<byte[]> frames, CompletableFuture<Item> result) {
            this(key, frames, result, null, 0);
        }
    }

    /** The frames of a call sent again: a new request id, and the ms left of its deadline. */
    @FunctionalInterface
    interface Again {
        List<byte[]> frames(String newId, long remainingMs);
    }

    /** Send frames; nothing answers them (PUBLISH, CANCEL). */
    record Send(List<byte[]> frames) implements ClientOp {}

    /** The caller gave up waiting for {@code key}. */
    record Forget(String key) implements ClientOp {}

    /** Send what is queued, then stop the I/O thread. */
    record Close() implements ClientOp {}
}
