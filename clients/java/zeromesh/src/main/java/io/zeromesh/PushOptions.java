// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZonedDateTime;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * How to push: application headers, the confirm timeout, and when and whether to queue the job.
 * {@link Builder#delay} or {@link Builder#at} schedules it (PUSH {@code at_ms}: it waits in the
 * broker's Redis from its confirm on, SPEC.md 16.5); {@link Builder#uniqueKey} queues it only if
 * no other job holds the key (16.6), held until the job is done or for {@link Builder#uniqueTtl}.
 * {@link Builder#trace} and {@link Builder#parent} name the trace the jobs join (by default, in a
 * {@link Worker}'s handler thread, the handled message's trace with its id as parent).
 * Immutable; one instance may serve any number of pushes (a delay counts from each push).
 *
 * <pre>{@code
 * client.push("cards", body, PushOptions.builder().at(OffsetDateTime.parse("2026-12-25T08:00:00+01:00"))
 *         .uniqueKey("card:42").build());
 * }</pre>
 */
public final class PushOptions {
    /** No headers, the default timeout, now, not unique. */
    public static final PushOptions DEFAULT = builder().build();

    private final Map<String, ?> headers;
    private final Duration timeout;
    private final Duration delay;
    private final Instant at;
    private final String uniqueKey;
    private final Duration uniqueTtl;
    private final String trace;
    private final String parent;

    private PushOptions(Builder b) {
        this.headers = b.headers;
        this.timeout = b.timeout;
        this.delay = b.delay;
        this.at = b.at;
        this.uniqueKey = b.uniqueKey;
        this.uniqueTtl = b.uniqueTtl;
        this.trace = b.trace;
        this.parent = b.parent;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Builder of {@link PushOptions}: each setter checks its value, {@link #build} how they combine. */
    public static final class Builder {
        private Map<String, ?> headers;
        private Duration timeout = Defaults.PUSH_TIMEOUT;
        private Duration delay;
        private Instant at;
        private String uniqueKey;
        private Duration uniqueTtl;
        private String trace;
        private String parent;

        private Builder() {}

        /** Application headers, delivered with the job (null: none). */
        public Builder headers(Map<String, ?> headers) {
            this.headers = headers;
            return this;
        }

        /** How long to wait for the broker's confirm (default 10 s). */
        public Builder timeout(Duration timeout) {
            if (timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException("timeout must be positive, got " + timeout);
            }
            this.timeout = timeout;
            return this;
        }

        /**
         * Run the job this long after the push, not before (zero: now). Counted from each push
         * call, on this machine's wall clock.
         *
         * @throws IllegalArgumentException a negative delay
         */
        public Builder delay(Duration delay) {
            if (delay.isNegative()) {
                throw new IllegalArgumentException("delay must be zero or more, got " + delay);
            }
            this.delay = delay;
            return this;
        }

        /** Run the job at this instant, not before; a time in the past means now. */
        public Builder at(Instant at) {
            this.at = Objects.requireNonNull(at, "at");
            return this;
        }

        /** {@link #at(Instant)} for a time with its UTC offset, e.g. {@code OffsetDateTime.parse(...)}. */
        public Builder at(OffsetDateTime at) {
            return at(at.toInstant());
        }

        /** {@link #at(Instant)} for a time in a zone: 08:00 in Europe/Paris is that zone's 08:00. */
        public Builder at(ZonedDateTime at) {
            return at(at.toInstant());
        }

        /**
         * Queue the job only if no other job holds {@code key}; otherwise the push queues nothing
         * and returns the id of the job that holds it.
         *
         * @throws IllegalArgumentException not 1 to 255 bytes of UTF-8
         */
        public Builder uniqueKey(String key) {
            if (key == null || !Schema.isName(key)) {
                throw new IllegalArgumentException("a unique key must be 1.." + Wire.MAX_NAME_BYTES
                        + " bytes of UTF-8, got " + key);
            }
            this.uniqueKey = key;
            return this;
        }

        /**
         * Hold the unique key this long from the push, whatever happens to the job (by default it
         * is held until the job is done). Needs {@link #uniqueKey}.
         *
         * @throws IllegalArgumentException zero or negative
         */
        public Builder uniqueTtl(Duration ttl) {
            if (ttl.isNegative() || ttl.isZero()) {
                throw new IllegalArgumentException("uniqueTtl must be positive, got " + ttl);
            }
            this.uniqueTtl = ttl;
            return this;
        }

        /**
         * The trace the job joins, e.g. {@code job.trace()} of a job handled in another thread. It
         * wins over the handler's own, and then only {@link #parent} is sent with it.
         *
         * @throws IllegalArgumentException not 1 to 255 bytes of UTF-8
         */
        public Builder trace(String trace) {
            this.trace = checkName("trace", trace);
            return this;
        }

        /**
         * The id of the job or request whose handling led to this push ({@code job.id()}). Needs
         * {@link #trace}.
         *
         * @throws IllegalArgumentException not 1 to 255 bytes of UTF-8
         */
        public Builder parent(String parent) {
            this.parent = checkName("parent", parent);
            return this;
        }

        private static String checkName(String what, String value) {
            if (value == null || !Schema.isName(value)) {
                throw new IllegalArgumentException("a " + what + " must be 1.." + Wire.MAX_NAME_BYTES
                        + " bytes of UTF-8, got " + value);
            }
            return value;
        }

        /**
         * @throws IllegalArgumentException both a delay and an instant, a uniqueTtl without a
         *                                  uniqueKey, or a parent without a trace
         */
        public PushOptions build() {
            if (delay != null && at != null) {
                throw new IllegalArgumentException("give a delay or an instant (at), not both");
            }
            if (uniqueTtl != null && uniqueKey == null) {
                throw new IllegalArgumentException("uniqueTtl needs a uniqueKey");
            }
            if (parent != null && trace == null) {
                throw new IllegalArgumentException("a parent needs a trace (without one, a handler's job gives both)");
            }
            return new PushOptions(this);
        }
    }

    public Map<String, ?> headers() {
        return headers;
    }

    public Duration timeout() {
        return timeout;
    }

    /** The key the job is unique by, or null. */
    public String uniqueKey() {
        return uniqueKey;
    }

    /**
     * The PUSH header fields these options add, for a push at {@code nowMs} (ms since the Unix
     * epoch): {@code at_ms}, {@code unique_key}, {@code unique_ttl_ms}, {@code trace}, {@code parent};
     * empty for a plain push.
     */
    Map<String, Object> fields(long nowMs) {
        Map<String, Object> fields = new LinkedHashMap<>();
        if (trace != null) {
            fields.put("trace", trace);
            if (parent != null) {
                fields.put("parent", parent);
            }
        }
        if (delay != null) {
            fields.put("at_ms", nowMs + delay.toMillis());
        } else if (at != null) {
            fields.put("at_ms", at.toEpochMilli());
        }
        if (uniqueKey != null) {
            fields.put("unique_key", uniqueKey);
            if (uniqueTtl != null) {
                fields.put("unique_ttl_ms", Math.max(1, uniqueTtl.toMillis()));
            }
        }
        return fields;
    }
}
