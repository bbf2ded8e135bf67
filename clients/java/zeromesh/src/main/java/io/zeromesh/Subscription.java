// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.zeromq.SocketType;
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
 *
 * <p>A PUB endpoint that refuses this subscriber's handshake (no key, a key without the
 * subscriber role, a wrong server key: SPEC.md 14.4) is logged at ERROR once, and {@link #next}
 * throws {@link AuthenticationException} while it stays refused.
 */
public final class Subscription implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.client");

    /** How often a waiting {@link #next} looks for a refused handshake. */
    private static final long REFUSAL_CHECK_MS = 100;
    private static final AtomicLong SERIAL = new AtomicLong();

    private final String endpoints;
    private final ZMQ.Socket sock;
    private final ZMQ.Socket monitor;
    private final Handshakes handshakes;
    /** Refused endpoints already logged (once per refusal). */
    private final Set<String> logged = new HashSet<>();
    private final GapTracker gaps = new GapTracker();
    private boolean closed;

    /** {@code curve}: null for the NULL mechanism; its server keys are one, or one per endpoint in order. */
    Subscription(ZContext ctx, List<String> endpoints, List<String> prefixes, CurveSettings curve) {
        if (curve != null) {
            curve.checkFits(endpoints.size(), "ZEROMESH_PUB (pubEndpoint)");
        }
        this.endpoints = String.join(",", endpoints);
        this.sock = Sockets.sub(ctx);
        this.handshakes = new Handshakes(curve != null);
        // Before connecting: the monitor must see the first handshakes.
        String address = "inproc://zeromesh-sub-monitor-" + SERIAL.incrementAndGet() + "-" + System.nanoTime();
        if (!sock.monitor(address, Handshakes.EVENTS)) {
            sock.close();
            throw new ZeromeshException("error", "cannot monitor the subscription's connections");
        }
        this.monitor = ctx.createSocket(SocketType.PAIR);
        monitor.setLinger(0);
        monitor.setRcvHWM(0); // no limit: read only in next(), and a full pipe would block JeroMQ (ConnectionMonitor.close)
        monitor.connect(address);
        Sockets.connectAll(sock, endpoints, curve);
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

    /**
     * The next event, or null if none arrives within {@code timeout}. Malformed events are logged and dropped.
     *
     * @throws AuthenticationException a PUB endpoint refuses this subscriber's handshake
     */
    public Event next(Duration timeout) {
        if (closed) {
            throw new IllegalStateException("subscription is closed");
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            checkRefused();
            // In slices, so a refusal that comes while waiting is thrown within one.
            long leftMs = Math.max(0, (deadline - System.nanoTime() + 999_999) / 1_000_000);
            sock.setReceiveTimeOut((int) Math.min(REFUSAL_CHECK_MS, leftMs));
            byte[] first = sock.recv(0);
            if (first == null) {
                if (System.nanoTime() - deadline >= 0) {
                    checkRefused();
                    return null;
                }
                continue;
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

    /** Read the monitor; throw while an endpoint refuses us, logging each refusal once. */
    private void checkRefused() {
        long now = System.nanoTime();
        ZMQ.Event event;
        while ((event = ZMQ.Event.recv(monitor, ZMQ.DONTWAIT)) != null) {
            handshakes.event(event.getAddress(), event.getEvent(), now);
        }
        Map<String, String> refused = handshakes.refused(now);
        logged.retainAll(refused.keySet()); // an endpoint that got in since: its next refusal is news
        if (refused.isEmpty()) {
            return;
        }
        for (Map.Entry<String, String> e : refused.entrySet()) {
            if (logged.add(e.getKey())) {
                LOG.log(Level.ERROR, "subscription: {0}", e.getValue());
            }
        }
        throw new AuthenticationException(refused.values().iterator().next());
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            sock.monitor(null, 0); // first: see ConnectionMonitor.close
            monitor.close();
            sock.close();
        }
    }
}
