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

    private PushOptions(Builder b) {
        this.headers = b.headers;
        this.timeout = b.timeout;
        this.delay = b.delay;
        this.at = b.at;
        this.uniqueKey = b.uniqueKey;
        this.uniqueTtl = b.uniqueTtl;
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

        /** @throws IllegalArgumentException both a delay and an instant, or a uniqueTtl without a uniqueKey */
        public PushOptions build() {
            if (delay != null && at != null) {
                throw new IllegalArgumentException("give a delay or an instant (at), not both");
            }
            if (uniqueTtl != null && uniqueKey == null) {
                throw new IllegalArgumentException("uniqueTtl needs a uniqueKey");
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
     * epoch): {@code at_ms}, {@code unique_key}, {@code unique_ttl_ms}; empty for a plain push.
     */
    Map<String, Object> fields(long nowMs) {
        Map<String, Object> fields = new LinkedHashMap<>();
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
