// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The queue controls of SPEC.md section 12 as {@link Client} methods, each one ADMIN round trip
 * through {@link #admin} with the admin timeout (5 s). Apart from Client, so that it stays small.
 *
 * @see Client#admin(String, Map, Duration)
 */
abstract class AdminCalls {
    /** Run an admin operation (SPEC.md section 12); returns the reply map. */
    public abstract Map<String, Object> admin(String op, Map<String, ?> args, Duration timeout);

    /**
     * Pause a queue: it keeps taking pushes and dispatches nothing, on every broker sharing its
     * Redis, until {@link #resume}; jobs in flight finish.
     */
    public void pause(String queue) {
        admin("pause", queueArgs(queue), Defaults.ADMIN_TIMEOUT);
    }

    /** Let a paused queue dispatch again. */
    public void resume(String queue) {
        admin("resume", queueArgs(queue), Defaults.ADMIN_TIMEOUT);
    }

    /**
     * Drop a queue's waiting jobs, in the broker's memory and in its Redis list; jobs in flight
     * finish, scheduled jobs stay scheduled. Returns how many were dropped.
     */
    public long purgeQueue(String queue) {
        return count(admin("purge_queue", queueArgs(queue), Defaults.ADMIN_TIMEOUT).get("purged"));
    }

    /** {@link #scheduled(String, int)} of the first 100. */
    public List<ScheduledJob> scheduled(String queue) {
        return scheduled(queue, 100);
    }

    /** Up to {@code limit} of the queue's jobs scheduled for later, earliest first. */
    public List<ScheduledJob> scheduled(String queue, int limit) {
        if (limit < 1) {
            throw new IllegalArgumentException("limit must be 1 or more, got " + limit);
        }
        Map<String, Object> args = queueArgs(queue);
        args.put("limit", (long) limit);
        List<ScheduledJob> jobs = new ArrayList<>();
        for (Object item : list(admin("scheduled", args, Defaults.ADMIN_TIMEOUT).get("items"))) {
            jobs.add(ScheduledJob.fromMap((Map<?, ?>) item));
        }
        return jobs;
    }

    /**
     * Cancel a scheduled job before it runs.
     *
     * @throws RemoteException code not_found: no schedule holds it (it ran already, or never was)
     */
    public void cancel(String id) {
        if (id == null || id.isEmpty()) {
            throw new IllegalArgumentException("cancel needs a job id");
        }
        admin("cancel", Map.of("id", id), Defaults.ADMIN_TIMEOUT);
    }

    /** {@link #cancel(String)}, looking in {@code queue}'s schedule only. */
    public void cancel(String id, String queue) {
        if (id == null || id.isEmpty()) {
            throw new IllegalArgumentException("cancel needs a job id");
        }
        Map<String, Object> args = queueArgs(queue);
        args.put("id", id);
        admin("cancel", args, Defaults.ADMIN_TIMEOUT);
    }

    /**
     * The broker's periodic schedules ({@code [[schedules]]} of its configuration), each a map
     * {@code {name, cron, timezone, queue, headers, missed, last, last_ms, next, next_ms}}; maps
     * for display, which the broker may extend.
     */
    @SuppressWarnings("unchecked")
    public List<Map<String, Object>> schedules() {
        List<Map<String, Object>> schedules = new ArrayList<>();
        for (Object item : list(admin("schedules", Map.of(), Defaults.ADMIN_TIMEOUT).get("schedules"))) {
            schedules.add((Map<String, Object>) item);
        }
        return schedules;
    }

    private static Map<String, Object> queueArgs(String queue) {
        Client.checkName("queue", queue);
        Map<String, Object> args = new LinkedHashMap<>();
        args.put("queue", queue);
        return args;
    }

    private static long count(Object value) {
        return value instanceof Number n ? n.longValue() : 0;
    }

    private static List<?> list(Object value) {
        return value instanceof List<?> l ? l : List.of();
    }
}
