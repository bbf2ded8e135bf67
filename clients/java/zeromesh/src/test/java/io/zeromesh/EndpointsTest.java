// SPDX-License-Identifier: MIT
package io.zeromesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Endpoint lists (ZEROMESH_BROKER, ZEROMESH_PUB, the builders): parsed and checked in one place. */
class EndpointsTest {
    @Test
    void oneEndpointOrSeveralCommaSeparated() {
        assertEquals(List.of("tcp://127.0.0.1:5555"), Endpoints.parse("tcp://127.0.0.1:5555"));
        assertEquals(List.of("tcp://h1:5555", "tcp://h2:5555", "tcp://h3:5555"),
                Endpoints.parse("tcp://h1:5555, tcp://h2:5555 ,tcp://h3:5555"));
    }

    @Test
    void anEmptyItemIsAClearError() {
        for (String bad : List.of("", " ", "tcp://h1:5555,,tcp://h2:5555", "tcp://h1:5555,", ",tcp://h1:5555")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Endpoints.parse(bad));
            assertTrue(e.getMessage().startsWith("empty endpoint in '" + bad + "'"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> Client.builder().endpoint("tcp://h1:5555,"));
        assertThrows(IllegalArgumentException.class, () -> Client.builder().pubEndpoint(" ,tcp://h1:5556"));
        assertThrows(IllegalArgumentException.class, () -> Worker.builder().endpoint("tcp://h1:5555,,tcp://h2:5555"));
    }
}
