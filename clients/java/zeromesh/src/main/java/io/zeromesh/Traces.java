// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Trace propagation (issue 19): while a {@link Worker}'s handler runs for a job or request, what
 * that handler's thread pushes or requests carries the handled message's {@code trace} and, as
 * {@code parent}, its id, so one trace holds every message an action led to. The handled message
 * is kept in a ThreadLocal, set around the handler call and restored after it, also when it
 * throws; a thread the handler starts does not see it ({@link Worker#carrying} passes it on).
 */
final class Traces {
    private static final ThreadLocal<Job> CURRENT = new ThreadLocal<>();

    private Traces() {}

    static Job current() {
        return CURRENT.get();
    }

    /** Run {@code task} with {@code job} as this thread's current job; the one before comes back after. */
    static <T> T within(Job job, Callable<T> task) throws Exception {
        Job before = CURRENT.get();
        CURRENT.set(job);
        try {
            return task.call();
        } finally {
            if (before == null) {
                CURRENT.remove(); // a pooled thread keeps no reference to a finished job
            } else {
                CURRENT.set(before);
            }
        }
    }

    /**
     * {@code fields} (more header fields of a push or request) with the current job's trace and
     * id as parent added; as they are when they name a trace already (an explicit trace wins) or
     * when no handler runs in this thread (the message is then its own trace).
     */
    static Map<String, Object> fields(Map<String, Object> fields) {
        Job job = CURRENT.get();
        if (job == null || fields.containsKey("trace")) {
            return fields;
        }
        Map<String, Object> out = new LinkedHashMap<>(fields);
        out.put("trace", job.trace());
        out.put("parent", job.id());
        return out;
    }
}
