// SPDX-License-Identifier: MIT
package io.zeromesh;

import com.google.gson.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * A job taken from a Redis queue by {@link RedisQueue.Consumer#take}. Hand it back to the same
 * consumer's {@code ack} or {@code fail}. Immutable.
 */
public final class RedisJob {
    private final String queue;
    private final byte[] element;
    private final JsonObject envelope;
    private final String id;
    private final byte[] body;
    private final Map<String, Object> headers;
    private final long deliveries;
    private final String error;

    RedisJob(String queue, byte[] element, JsonObject envelope, String id, byte[] body, Map<String, Object> headers,
             long deliveries, String error) {
        this.queue = queue;
        this.element = element;
        this.envelope = envelope;
        this.id = id;
        this.body = body;
        this.headers = headers;
        this.deliveries = deliveries;
        this.error = error;
    }

    public String queue() {
        return queue;
    }

    /** The job id: the envelope's, or one this consumer assigned (envelopes without id, raw jobs). */
    public String id() {
        return id;
    }

    /** The payload. Not copied: don't change it. */
    public byte[] body() {
        return body;
    }

    public String text() {
        return new String(body, StandardCharsets.UTF_8);
    }

    /** The producer's headers (always empty on raw queues). */
    public Map<String, Object> headers() {
        return headers;
    }

    /** Which delivery this is, from 1 (the envelope's {@code attempt} + 1). */
    public long attempt() {
        return deliveries + 1;
    }

    /** Why the previous delivery failed, or null. */
    public String error() {
        return error;
    }

    /** True for a job from a raw queue (the element is the body itself). */
    public boolean raw() {
        return envelope == null;
    }

    /** The exact element in Redis, as LREM needs it. */
    byte[] element() {
        return element;
    }

    /** The parsed envelope (null on raw queues); a copy is edited for a retry or dead letter. */
    JsonObject envelope() {
        return envelope;
    }

    /** Deliveries so far before this one (the envelope's {@code attempt}). */
    long deliveries() {
        return deliveries;
    }

    @Override
    public String toString() {
        return "RedisJob(" + queue + " id=" + id + " attempt=" + attempt() + ")";
    }
}
