// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Events whose topic starts with one of the prefixes ("" means every topic), from the PUB
 * endpoint of every broker of the list (one SUB socket connected to each), at most once (SPEC.md
 * section 8.3). A publish goes through one broker, so each event arrives once; gaps are
 * judged per broker ({@link Event#broker()}).
 *
 * <p><b>Not thread-safe:</b> a Subscription owns a ZeroMQ SUB socket, and ZeroMQ sockets must
 * not be used from two threads. Create it, read it and close it in one thread (or hand it over
 * with a happens-before edge, e.g. through a BlockingQueue, and stop using it in the first).
 *
 * <p>A new SUB misses what is published before its subscription reaches the broker (ZeroMQ's
 * slow joiner), and PUB drops rather than blocks: watch {@link Event#gap()}.
 */
public final class Subscription implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.client");

    private final String endpoints;
    private final ZMQ.Socket sock;
    private final GapTracker gaps = new GapTracker();
    private boolean closed;

    Subscription(ZContext ctx, List<String> endpoints, List<String> prefixes) {
        this.endpoints = String.join(",", endpoints);
        this.sock = Sockets.sub(ctx, endpoints);
        for (String prefix : prefixes.isEmpty() ? List.of("") : prefixes) {
            subscribe(prefix);
        }
    }

    public void subscribe(String prefix) {
        sock.subscribe(prefix.getBytes(StandardCharsets.UTF_8));
    }

    public void unsubscribe(String prefix) {
        sock.unsubscribe(prefix.getBytes(StandardCharsets.UTF_8));
    }

    /** The next event, or null if none arrives within {@code timeout}. Malformed events are logged and dropped. */
    public Event next(Duration timeout) {
        if (closed) {
            throw new IllegalStateException("subscription is closed");
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            long leftMs = Math.max(0, (deadline - System.nanoTime() + 999_999) / 1_000_000);
            sock.setReceiveTimeOut((int) Math.min(Integer.MAX_VALUE, leftMs));
            byte[] first = sock.recv(0);
            if (first == null) {
                return null;
            }
            List<byte[]> frames = new ArrayList<>(3);
            frames.add(first);
            while (sock.hasReceiveMore()) {
                frames.add(sock.recv(0));
            }
            Codec.RawEvent raw;
            try {
                raw = Codec.unpackEvent(frames);
            } catch (ProtocolException e) {
                LOG.log(Level.WARNING, "dropping a malformed event from {0}: {1}", endpoints, e.getMessage());
                if (System.nanoTime() >= deadline) {
                    return null;
                }
                continue;
            }
            Map<String, Object> header = raw.header();
            long seq = header.get("seq") instanceof Long l ? l : ((BigInteger) header.get("seq")).longValue();
            String epoch = (String) header.get("epoch");
            // Every gap rule is per broker (SPEC 7); brokers that do not name themselves count as "".
            String broker = header.get("broker") instanceof String b ? b : "";
            @SuppressWarnings("unchecked")
            Map<String, Object> headers = header.get("headers") instanceof Map<?, ?> m
                    ? (Map<String, Object>) m : Map.of();
            return new Event(raw.topic(), raw.body(), headers, seq, epoch, broker, (String) header.get("id"),
                    gaps.observe(raw.topic(), seq, epoch, broker));
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            sock.close();
        }
    }
}
