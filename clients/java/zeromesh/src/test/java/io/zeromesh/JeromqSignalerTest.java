// SPDX-License-Identifier: MIT
package io.zeromesh;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Which zmq.Signaler a process loaded: the check compares where classes came from. */
class JeromqSignalerTest {
    @Test
    void thePatchedSignalerComesFirstOnThisClasspath() {
        assertTrue(JeromqSignaler.patched(), "zmq.Signaler should load from the zeromesh classes, not JeroMQ's jar");
    }

    @Test
    void classesFromDifferentPlacesAreToldApart() throws Exception {
        assertTrue(JeromqSignaler.sameSource(Class.forName("zmq.Signaler"), Client.class));
        assertFalse(JeromqSignaler.sameSource(org.zeromq.ZMQ.class, Client.class)); // JeroMQ's own jar
    }
}
