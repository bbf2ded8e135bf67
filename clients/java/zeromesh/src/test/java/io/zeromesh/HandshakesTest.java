// SPDX-License-Identifier: MIT
package io.zeromesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.zeromq.ZMQ;

/** Which monitor event sequences count as a refused handshake (the ones JeroMQ 0.5.4 was seen to report). */
class HandshakesTest {
    private static final String EP = "tcp://127.0.0.1:5555";
    private static final long MS = 1_000_000L;

    private static Map<String, String> run(boolean curve, long endNanos, Object... events) {
        Handshakes h = new Handshakes(curve);
        for (int i = 0; i < events.length; i += 2) {
            h.event(EP, (Integer) events[i], (Long) events[i + 1]);
        }
        return h.refused(endNanos);
    }

    private static String refused(String why) {
        return "authentication refused by the broker at " + EP + ": " + why;
    }

    @Test
    void anUnknownKeyIsRefusedByZap() {
        assertEquals(Map.of(EP, refused(Handshakes.KEY_NOT_ALLOWED)), run(true, 200 * MS,
                ZMQ.EVENT_CONNECTED, 30 * MS, ZMQ.EVENT_HANDSHAKE_PROTOCOL, 70 * MS,
                ZMQ.HANDSHAKE_FAILED_AUTH, 110 * MS, ZMQ.EVENT_DISCONNECTED, 111 * MS));
    }

    @Test
    void aDropDuringTheGreetingIsAMechanismMismatch() {
        assertEquals(Map.of(EP, refused(Handshakes.HANDSHAKE_FAILED)), run(false, 100 * MS,
                ZMQ.EVENT_CONNECTED, 50 * MS, ZMQ.EVENT_DISCONNECTED, 57 * MS));
        // A broker stopped mid-greeting that drops us only after the window: not a refusal.
        assertTrue(run(false, 5000 * MS, ZMQ.EVENT_CONNECTED, 0L, ZMQ.EVENT_DISCONNECTED, 3000 * MS).isEmpty());
    }

    @Test
    void twoQuickDropsAfterTheGreetingAreAWrongServerKey() {
        Object[] once = {ZMQ.EVENT_CONNECTED, 40 * MS, ZMQ.EVENT_HANDSHAKE_PROTOCOL, 88 * MS, ZMQ.EVENT_DISCONNECTED,
            101 * MS};
        assertTrue(run(true, 110 * MS, once).isEmpty(), "one drop could be a broker stopping");
        assertEquals(Map.of(EP, refused(Handshakes.HANDSHAKE_FAILED)), run(true, 200 * MS,
                ZMQ.EVENT_CONNECTED, 40 * MS, ZMQ.EVENT_HANDSHAKE_PROTOCOL, 88 * MS, ZMQ.EVENT_DISCONNECTED, 101 * MS,
                ZMQ.EVENT_CONNECTED, 104 * MS, ZMQ.EVENT_HANDSHAKE_PROTOCOL, 129 * MS, ZMQ.EVENT_DISCONNECTED, 145 * MS));
        assertTrue(run(false, 200 * MS,
                ZMQ.EVENT_CONNECTED, 40 * MS, ZMQ.EVENT_HANDSHAKE_PROTOCOL, 88 * MS, ZMQ.EVENT_DISCONNECTED, 101 * MS,
                ZMQ.EVENT_CONNECTED, 104 * MS, ZMQ.EVENT_HANDSHAKE_PROTOCOL, 129 * MS, ZMQ.EVENT_DISCONNECTED, 145 * MS)
                .isEmpty(), "without CURVE there is no server key to be wrong");
    }

    @Test
    void aConnectionThatOutlivesTheWindowOrAMessageClearsTheRefusal() {
        Handshakes h = new Handshakes(true);
        h.event(EP, ZMQ.HANDSHAKE_FAILED_AUTH, 0L);
        h.event(EP, ZMQ.EVENT_CONNECTED, 1000 * MS);
        h.event(EP, ZMQ.EVENT_HANDSHAKE_PROTOCOL, 1050 * MS);
        assertEquals(1, h.refused(1100 * MS).size(), "not yet: the handshake may still fail");
        assertTrue(h.refused(1050 * MS + Handshakes.WINDOW_NANOS).isEmpty());
        h.event(EP, ZMQ.HANDSHAKE_FAILED_PROTOCOL, 3000 * MS);
        assertEquals(Map.of(EP, refused(Handshakes.HANDSHAKE_FAILED)), h.refused(3000 * MS));
        h.succeeded(EP);
        assertTrue(h.refused(3001 * MS).isEmpty());
        h.event(EP, ZMQ.HANDSHAKE_FAILED_NO_DETAIL, 4000 * MS);
        h.event(EP, ZMQ.HANDSHAKE_SUCCEEDED, 4001 * MS);
        assertTrue(h.refused(4002 * MS).isEmpty());
    }
}
