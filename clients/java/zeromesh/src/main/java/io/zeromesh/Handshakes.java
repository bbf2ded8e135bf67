// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import org.zeromq.ZMQ;

/**
 * Refused handshakes, per endpoint a socket connects to, from its monitor's events (SPEC.md
 * 14.4). A refused endpoint stays refused until a handshake with it succeeds.
 *
 * <p>What JeroMQ 0.5.4 reports, measured against the Python broker (libzmq 4.3.5):
 * <ul>
 * <li>a key the broker does not know (or removed), or a key without the subscriber role at the
 *     PUB endpoint: HANDSHAKE_FAILED_AUTH (ZAP's status 400), then DISCONNECTED, and JeroMQ does
 *     not reconnect that socket;</li>
 * <li>CURVE on one side only (no keys against a CURVE broker, keys against one without): the
 *     connection is made and dropped during the ZMTP greeting (CONNECTED, DISCONNECTED, no
 *     HANDSHAKE_PROTOCOL between), and a DEALER does not reconnect;</li>
 * <li>a wrong server public key: the greeting completes (HANDSHAKE_PROTOCOL), then the broker
 *     drops the connection within milliseconds, again on every reconnection;</li>
 * <li>a good key: HANDSHAKE_PROTOCOL and nothing more. JeroMQ never reports HANDSHAKE_SUCCEEDED
 *     nor HANDSHAKE_FAILED_NO_DETAIL, and HANDSHAKE_FAILED_PROTOCOL only for a peer that breaks
 *     the CURVE protocol itself.</li>
 * </ul>
 * So besides the three handshake-failed events, a drop during the greeting counts as refused,
 * and, with CURVE on, two drops in a row each within {@link #WINDOW_NANOS} of its greeting (one
 * could be a broker that stopped just then). A connection that outlives the window after its
 * greeting, a message from the broker ({@link #succeeded}), or HANDSHAKE_SUCCEEDED (libzmq's
 * event, should JeroMQ send it) clears the refusal. Owned by the thread that owns the socket.
 */
final class Handshakes {
    static final String KEY_NOT_ALLOWED = "key not allowed";
    static final String HANDSHAKE_FAILED = "handshake failed (CURVE on one side only, or a wrong server public key)";
    /** A CURVE handshake takes one round trip after the greeting: a drop sooner than this is a refusal. */
    static final long WINDOW_NANOS = 1_000_000_000L;
    /** The monitor events it needs, besides those of {@link ConnectionMonitor}. */
    static final int EVENTS = ZMQ.EVENT_CONNECTED | ZMQ.EVENT_HANDSHAKE_PROTOCOL | ZMQ.EVENT_DISCONNECTED
            | ZMQ.HANDSHAKE_SUCCEEDED | ZMQ.HANDSHAKE_FAILED_AUTH | ZMQ.HANDSHAKE_FAILED_PROTOCOL
            | ZMQ.HANDSHAKE_FAILED_NO_DETAIL;

    private static final class State {
        boolean connected;
        boolean greeted;
        /** The current connection's handshake failed (a failed event): it proves nothing more. */
        boolean failed;
        long connectedAt;
        long greetedAt;
        int quickDrops;
        String refusal;
    }

    private final boolean curve;
    private final Map<String, State> states = new HashMap<>();

    /** {@code curve}: whether the socket is a CURVE client (only then is a quick drop a refusal). */
    Handshakes(boolean curve) {
        this.curve = curve;
    }

    /** One monitor event of the connection to {@code endpoint}. */
    void event(String endpoint, int kind, long now) {
        State s = states.computeIfAbsent(endpoint, k -> new State());
        if (kind == ZMQ.EVENT_CONNECTED) {
            s.connected = true;
            s.greeted = false;
            s.failed = false;
            s.connectedAt = now;
        } else if (kind == ZMQ.EVENT_HANDSHAKE_PROTOCOL) {
            s.greeted = true;
            s.greetedAt = now;
        } else if (kind == ZMQ.HANDSHAKE_SUCCEEDED) {
            succeeded(s);
        } else if (kind == ZMQ.HANDSHAKE_FAILED_AUTH) {
            s.refusal = KEY_NOT_ALLOWED;
            s.failed = true;
        } else if (kind == ZMQ.HANDSHAKE_FAILED_PROTOCOL || kind == ZMQ.HANDSHAKE_FAILED_NO_DETAIL) {
            s.refusal = HANDSHAKE_FAILED;
            s.failed = true;
        } else if (kind == ZMQ.EVENT_DISCONNECTED && s.connected) {
            s.connected = false;
            if (s.failed) {
                return; // the event said why
            }
            if (!s.greeted) {
                if (now - s.connectedAt < WINDOW_NANOS) {
                    s.refusal = HANDSHAKE_FAILED;
                }
            } else if (curve && now - s.greetedAt < WINDOW_NANOS) {
                if (++s.quickDrops >= 2 && s.refusal == null) {
                    s.refusal = HANDSHAKE_FAILED;
                }
            } else {
                s.quickDrops = 0;
            }
        }
    }

    /** A message came from the broker at {@code endpoint}: its handshake worked. */
    void succeeded(String endpoint) {
        State s = states.get(endpoint);
        if (s != null) {
            succeeded(s);
        }
    }

    private static void succeeded(State s) {
        s.refusal = null;
        s.quickDrops = 0;
    }

    /** The refusal of each endpoint refused now ("authentication refused by the broker at ..."), in no set order. */
    Map<String, String> refused(long now) {
        Map<String, String> refused = new LinkedHashMap<>();
        for (Map.Entry<String, State> e : states.entrySet()) {
            State s = e.getValue();
            if (s.connected && s.greeted && !s.failed && now - s.greetedAt >= WINDOW_NANOS) {
                succeeded(s); // still up well after the greeting: the broker let it in
            }
            if (s.refusal != null) {
                refused.put(e.getKey(), message(e.getKey(), s.refusal));
            }
        }
        return refused;
    }

    static String message(String endpoint, String why) {
        return "authentication refused by the broker at " + endpoint + ": " + why;
    }
}
