// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.concurrent.atomic.AtomicLong;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Whether a DEALER has a live connection to the broker, from ZeroMQ's socket monitor: live after
 * a connection is made (TCP connected, or the ZMTP handshake done), not live at the start and
 * after a disconnection. A broker that is up but slow stays live, so its callers keep their whole
 * deadline; nothing listening, or a broker gone, is noticed within a connect timeout. It also
 * sees a broker refuse the handshake ({@link Handshakes}): then {@link #refusal} says why. Owned
 * by the thread that owns the DEALER.
 */
final class ConnectionMonitor implements AutoCloseable {
    private static final AtomicLong SERIAL = new AtomicLong();
    private static final int EVENTS = Handshakes.EVENTS;

    private final ZMQ.Socket watched;
    private final ZMQ.Socket events;
    /** Once a connection was live and went down, calls allow the broker this long to come back (a
     * restart; pushes resend across it) before they call it unreachable: SPEC 11. */
    static final long RECONNECT_GRACE_NANOS = 5_000_000_000L;

    private final String endpoint;
    private final Handshakes handshakes;
    private boolean live;
    private boolean everLive;
    private long notLiveSince;

    /**
     * Watch {@code dealer}, which will connect to {@code endpoint} (as a CURVE client when
     * {@code curve}); call before it connects, so its first connection is seen.
     */
    ConnectionMonitor(ZContext ctx, ZMQ.Socket dealer, String endpoint, boolean curve, long now) {
        this.endpoint = endpoint;
        this.watched = dealer;
        this.handshakes = new Handshakes(curve);
        String address = "inproc://zeromesh-monitor-" + SERIAL.incrementAndGet() + "-" + System.nanoTime();
        if (!dealer.monitor(address, EVENTS)) {
            throw new ZeromeshException("error", "cannot monitor the connection to the broker");
        }
        events = ctx.createSocket(SocketType.PAIR);
        events.setLinger(0);
        events.setRcvHWM(0); // no limit: a full pipe would block JeroMQ's I/O thread (see close)
        events.connect(address);
        notLiveSince = now;
    }

    /** The socket to poll for events. */
    ZMQ.Socket socket() {
        return events;
    }

    /** Take every pending event. */
    void read(long now) {
        ZMQ.Event event;
        while ((event = ZMQ.Event.recv(events, ZMQ.DONTWAIT)) != null) {
            int kind = event.getEvent();
            handshakes.event(endpoint, kind, now);
            if (kind == ZMQ.EVENT_CONNECTED || kind == ZMQ.EVENT_HANDSHAKE_PROTOCOL) {
                live = true;
                everLive = true;
            } else if (kind == ZMQ.EVENT_DISCONNECTED && live) {
                live = false;
                notLiveSince = now;
            }
        }
    }

    /**
     * "authentication refused by the broker at ADDR: ..." while the broker refuses this DEALER's
     * handshake, else null.
     */
    String refusal(long now) {
        return handshakes.refused(now).get(endpoint);
    }

    /** A message came from the broker: the handshake worked. */
    void received() {
        handshakes.succeeded(endpoint);
    }

    boolean live() {
        return live;
    }

    /** When the connection last went down (or the monitor started); meaningful while not live. */
    long notLiveSince() {
        return notLiveSince;
    }

    /** True when no connection has been live for {@code timeoutNanos} of the time since {@code since}
     * (at least {@link #RECONNECT_GRACE_NANOS} when a connection had been live). */
    boolean unreachable(long since, long now, long timeoutNanos) {
        long wait = everLive ? Math.max(timeoutNanos, RECONNECT_GRACE_NANOS) : timeoutNanos;
        return !live && now - Math.max(since, notLiveSince) >= wait;
    }

    /**
     * Stop watching, then close the events' socket; call before closing the DEALER. JeroMQ sends
     * monitor events with a blocking send from its I/O thread: an event for a socket whose reader
     * is already closed would hold that thread, and every socket of the context, for good.
     */
    @Override
    public void close() {
        watched.monitor(null, 0);
        events.close();
    }
}
