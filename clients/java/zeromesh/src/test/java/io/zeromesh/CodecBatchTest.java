// SPDX-License-Identifier: MIT
package io.zeromesh;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Batch commands (SPEC.md 3.4) where the vectors do not reach: body limits and what packing refuses. */
class CodecBatchTest {
    private static final Map<String, Object> HEADER = Map.of("id", "m", "queue", "q", "ids", List.of("a", "b"));

    @Test
    void bodiesComeBackInOrderWithoutItems() {
        Message m = Codec.unpack(Codec.packBatch(Wire.PUSH_BATCH, HEADER, List.of(new byte[] {1}, new byte[0])));
        assertEquals("PUSH_BATCH", m.name());
        assertTrue(m.items().isEmpty());
        assertEquals(2, m.bodies().size());
        assertArrayEquals(new byte[] {1}, m.bodies().get(0));
        assertArrayEquals(new byte[0], m.bodies().get(1));
    }

    @Test
    void theBodyLimitAppliesToEveryBody() {
        List<byte[]> frames = Codec.packBatch(Wire.PUSH_BATCH, HEADER, List.of(new byte[4], new byte[5]));
        Codec.unpack(frames, 5);
        ProtocolException e = assertThrows(ProtocolException.class, () -> Codec.unpack(frames, 4));
        assertEquals("too_large", e.code());
    }

    @Test
    void packingRefusesWhatNoReceiverTakes() {
        assertThrows(IllegalArgumentException.class, () -> Codec.packBatch(Wire.PUSH_BATCH, HEADER, List.of()));
        List<byte[]> many = new ArrayList<>(Collections.nCopies(Wire.MAX_ITEMS_PER_MESSAGE + 1, new byte[0]));
        assertThrows(IllegalArgumentException.class, () -> Codec.packBatch(Wire.PUSH_BATCH, HEADER, many));
        assertThrows(IllegalArgumentException.class, () -> Codec.packBatch(Wire.PUSH, HEADER, List.of(new byte[0])));
        assertThrows(IllegalArgumentException.class, () -> Codec.packControl(Wire.JOB_BATCH, HEADER));
    }
}
