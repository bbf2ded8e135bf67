// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * What a handler receives: one job from a queue ({@link Kind#JOB}) or one request to a service
 * ({@link Kind#REQUEST}). Immutable apart from the cancelled flag; safe to pass between threads.
 */
public final class Job {
    public enum Kind { JOB, REQUEST }

    private final Kind kind;
    private final String name;
    private final Map<String, Object> header;
    private final byte[] body;
    private final long generation;
    private final Consumer<WorkerResult> results;
    private volatile boolean cancelled;

    Job(Kind kind, Map<String, Object> header, byte[] body, long generation, Consumer<WorkerResult> results) {
        this.kind = kind;
        this.name = (String) header.get(kind == Kind.JOB ? "queue" : "service");
        this.header = header;
        this.body = body;
        this.generation = generation;
        this.results = results;
    }

    /**
     * The jobs of a JOB_BATCH or JOB_PACKED (whose bodies the codec already cut at "sizes"): each
     * body is a first delivery, exactly as a JOB with this header would bring it.
     */
    static List<Job> fromBatch(Message message, long generation, Consumer<WorkerResult> results) {
        Map<String, Object> shared = message.header();
        List<?> ids = (List<?>) shared.get("ids");
        List<Job> jobs = new ArrayList<>(ids.size());
        for (int i = 0; i < ids.size(); i++) {
            String id = (String) ids.get(i);
            Map<String, Object> header = new LinkedHashMap<>();
            header.put("id", id);
            header.put("queue", shared.get("queue"));
            header.put("attempt", 1L);
            header.put("trace", id);
            header.put("lease_ms", shared.get("lease_ms"));
            if (shared.get("headers") != null) {
                header.put("headers", shared.get("headers"));
            }
            jobs.add(new Job(Kind.JOB, header, message.bodies().get(i), generation, results));
        }
        return jobs;
    }

    public Kind kind() {
        return kind;
    }

    /** The queue (for a job) or service (for a request) name. */
    public String name() {
        return name;
    }

    public String id() {
        return (String) header.get("id");
    }

    /** The payload. Not copied: don't change it. */
    public byte[] body() {
        return body;
    }

    public String text() {
        return new String(body, StandardCharsets.UTF_8);
    }

    /** The producer's application headers (empty if none). */
    @SuppressWarnings("unchecked")
    public Map<String, Object> headers() {
        return header.get("headers") instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
    }

    /** Which delivery this is, from 1. */
    public long attempt() {
        return header.get("attempt") instanceof Long l ? l : 1;
    }

    public String trace() {
        return header.get("trace") instanceof String s ? s : id();
    }

    /** Why the previous delivery failed, or null. */
    public String error() {
        return header.get("error") instanceof String s ? s : null;
    }

    /** A job's lease (null for a request). */
    public Duration lease() {
        return header.get("lease_ms") instanceof Long l ? Duration.ofMillis(l) : null;
    }

    /** The time a request had left when the broker sent it (null for a job). */
    public Duration timeout() {
        return header.get("timeout_ms") instanceof Long l ? Duration.ofMillis(l) : null;
    }

    /** The whole header as received, unknown fields included. */
    public Map<String, Object> header() {
        return header;
    }

    /** True once the broker cancelled this request (the caller gave up or its deadline passed). */
    public boolean isCancelled() {
        return cancelled;
    }

    void cancel() {
        cancelled = true;
    }

    long generation() {
        return generation;
    }

    /** Ask the broker to keep this job leased to this worker for {@code lease} from now (EXTEND). */
    public void extend(Duration lease) {
        if (kind == Kind.JOB) {
            results.accept(new WorkerResult.Extend(this, Math.max(1, lease.toMillis())));
        }
    }

    @Override
    public String toString() {
        return "Job(" + kind.name().toLowerCase() + " '" + name + "' id=" + id() + " attempt=" + attempt() + ")";
    }
}
