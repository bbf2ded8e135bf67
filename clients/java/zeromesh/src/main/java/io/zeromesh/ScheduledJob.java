// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.time.Instant;
import java.util.Map;

/**
 * A job waiting in a queue's schedule (ADMIN {@code scheduled}, SPEC.md 12): its id, when it is
 * due, its body's size in bytes, and its trace id (null when the broker did not say).
 */
public record ScheduledJob(String id, Instant due, long size, String trace) {
    static ScheduledJob fromMap(Map<?, ?> item) {
        long dueMs = item.get("due_ms") instanceof Number n ? n.longValue() : 0;
        long size = item.get("size") instanceof Number n ? n.longValue() : 0;
        return new ScheduledJob((String) item.get("id"), Instant.ofEpochMilli(dueMs), size,
                item.get("trace") instanceof String s ? s : null);
    }
}
