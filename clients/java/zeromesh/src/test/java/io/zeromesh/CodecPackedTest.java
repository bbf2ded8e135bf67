// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.msgpack.core.MessageBufferPacker;
import org.msgpack.core.MessagePack;

/** Packed commands (SPEC.md 3.5) where the vectors do not reach: the 1 MiB frame, body limits, packing. */
class CodecPackedTest {
    private static final Map<String, Object> HEADER = Map.of("id", "m", "queue", "q", "ids", List.of("a", "b"));

    /** A PUSH_PACKED header naming {@code ids} with these {@code sizes}, as given (no check, no sizes computed). */
    private static Map<String, Object> header(List<String> ids, List<?> sizes) {
        Map<String, Object> h = new LinkedHashMap<>();
        h.put("id", "m");
        h.put("queue", "q");
        h.put("ids", ids);
        h.put("sizes", sizes);
        return h;
    }

    /** Frames of a PUSH_PACKED built by hand, so they may break what {@link Codec#packPacked} refuses to build. */
    private static List<byte[]> frames(Map<String, Object> header, byte[] packed) {
        return List.of(Codec.commandFrame(Wire.PUSH_PACKED), Msgpack.write(header), packed);
    }

    private static List<String> ids(int n) {
        List<String> ids = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            ids.add("j" + i);
        }
        return ids;
    }

    private static String refusal(List<byte[]> frames, long maxBody) {
        return assertThrows(ProtocolException.class, () -> Codec.unpack(frames, maxBody)).code();
    }

    private static String refusal(List<byte[]> frames) {
        return refusal(frames, -1);
    }

    @Test
    void commandCodesAndNames() {
        // 0x01 to 0x14 with no gap: 0x13 and 0x14 are commands now, 0x15 is the first unknown one
        TreeSet<Integer> codes = new TreeSet<>(Wire.COMMAND_NAMES.keySet());
        assertEquals(0x01, codes.first());
        assertEquals(0x14, codes.last());
        assertEquals(0x14, codes.size());
        assertEquals(Wire.PUSH_PACKED, Wire.commandByName("PUSH_PACKED"));
        assertEquals(Wire.JOB_PACKED, Wire.commandByName("JOB_PACKED"));
        assertArrayEquals(new byte[] {0x5a, 0x4d, 0x01, 0x13}, Codec.commandFrame(Wire.PUSH_PACKED));
        assertEquals(1 << 20, Wire.MAX_PACKED_BYTES);
        List<byte[]> next = List.of(new byte[] {0x5a, 0x4d, 0x01, 0x15}, Msgpack.write(HEADER), new byte[0]);
        assertEquals("unknown_command", refusal(next));
    }

    @Test
    void roundTripCutsTheBodiesInOrder() {
        List<byte[]> bodies = List.of(new byte[0], new byte[256], "h\u00e9llo".getBytes(UTF_8), new byte[] {'x'});
        for (int i = 0; i < 256; i++) {
            bodies.get(1)[i] = (byte) i;
        }
        for (int command : new int[] {Wire.PUSH_PACKED, Wire.JOB_PACKED}) {
            Map<String, Object> h = new LinkedHashMap<>();
            h.put("id", "m");
            h.put("queue", "q");
            if (command == Wire.JOB_PACKED) {
                h.put("lease_ms", 1000L);
            }
            h.put("ids", List.of("a", "b", "c", "d"));
            h.put("headers", Map.of("k", "v"));
            List<byte[]> frames = Codec.packPacked(command, h, bodies);
            assertEquals(3, frames.size());
            assertArrayEquals(Codec.commandFrame(command), frames.get(0));
            assertEquals(263, frames.get(2).length);
            Message m = Codec.unpack(frames, 256);
            assertEquals(Wire.COMMAND_NAMES.get(command), m.name());
            assertTrue(m.items().isEmpty());
            assertEquals(List.of(0L, 256L, 6L, 1L), m.header().get("sizes"));
            // sizes is added last, as protocol/codec.py's pack_packed does; the rest keeps its order
            List<String> keys = new ArrayList<>(h.keySet());
            keys.add("sizes");
            assertEquals(keys, new ArrayList<>(m.header().keySet()));
            assertEquals(bodies.size(), m.bodies().size());
            for (int i = 0; i < bodies.size(); i++) {
                assertArrayEquals(bodies.get(i), m.bodies().get(i));
            }
        }
    }

    @Test
    void packedDecodesLikeTheSameBatch() {
        List<byte[]> bodies = List.of("cat.png".getBytes(UTF_8), "dog.png".getBytes(UTF_8));
        Message batch = Codec.unpack(Codec.packBatch(Wire.PUSH_BATCH, HEADER, bodies));
        Message packed = Codec.unpack(Codec.packPacked(Wire.PUSH_PACKED, HEADER, bodies));
        Map<String, Object> withoutSizes = new LinkedHashMap<>(packed.header());
        withoutSizes.remove("sizes");
        assertEquals(batch.header(), withoutSizes);
        for (int i = 0; i < bodies.size(); i++) {
            assertArrayEquals(batch.bodies().get(i), packed.bodies().get(i));
        }
    }

    @Test
    void theBodyLimitAppliesToEveryBody() {
        List<byte[]> frames = Codec.packPacked(Wire.PUSH_PACKED, HEADER, List.of(new byte[4], new byte[5]));
        assertEquals(2, Codec.unpack(frames, 5).bodies().size()); // at the limit
        assertEquals("too_large", refusal(frames, 4)); // the second body is one over
        assertEquals(2, Codec.unpack(frames).bodies().size()); // no limit at all
    }

    @Test
    void packedFrameIsAtMostOneMiB() {
        List<String> ids = ids(16);
        List<byte[]> atLimit = new ArrayList<>(Collections.nCopies(16, new byte[Wire.MAX_PACKED_BYTES / 16]));
        assertEquals(16, Codec.unpack(Codec.packPacked(Wire.PUSH_PACKED, Map.of("id", "m", "queue", "q", "ids", ids),
                atLimit)).bodies().size());
        // One byte more, with sizes that add up: too_large, whatever the body limit.
        List<Long> sizes = new ArrayList<>(Collections.nCopies(16, (long) Wire.MAX_PACKED_BYTES / 16));
        sizes.set(15, sizes.get(15) + 1);
        List<byte[]> over = frames(header(ids, sizes), new byte[Wire.MAX_PACKED_BYTES + 1]);
        assertEquals("too_large", refusal(over));
        assertEquals("too_large", refusal(over, Long.MAX_VALUE));
        // The frame's length is checked before the sizes are added up (SPEC.md section 10).
        assertEquals("too_large", refusal(frames(header(List.of("a"), List.of(1L)),
                new byte[Wire.MAX_PACKED_BYTES + 1])));
    }

    @Test
    void sizesThatDoNotAddUpAreBadFrame() {
        byte[] three = "xyz".getBytes(UTF_8);
        assertEquals("bad_frame", refusal(frames(header(List.of("a", "b"), List.of(1L, 1L)), three)));
        assertEquals("bad_frame", refusal(frames(header(List.of("a", "b"), List.of(2L, 2L)), three)));
        assertEquals("bad_frame", refusal(frames(header(List.of("a"), List.of(0L)), three)));
        assertEquals("bad_frame", refusal(frames(header(List.of("a"), List.of(1L)), new byte[0])));
        // Sizes far past the frame: no overflow into a sum that happens to match.
        assertEquals("bad_frame", refusal(frames(header(List.of("a", "b"), List.of(Long.MAX_VALUE, Long.MAX_VALUE)),
                three)));
        BigInteger max = new BigInteger("18446744073709551615");
        assertEquals("bad_frame", refusal(frames(header(List.of("a", "b"), List.of(max, 3L)), three)));
        // A body too large and sizes that do not add up: the sum is checked first.
        assertEquals("bad_frame", refusal(frames(header(List.of("a", "b"), List.of(2L, 2L)), three), 1));
    }

    @Test
    void headerFaultsAreBadHeaderAndComeFirst() {
        byte[] two = "xy".getBytes(UTF_8);
        assertEquals("bad_header", refusal(frames(header(List.of("a", "b"), List.of(2L)), two)));
        assertEquals("bad_header", refusal(frames(header(List.of("a", "a"), List.of(1L, 1L)), two)));
        assertEquals("bad_header", refusal(frames(header(List.of(), List.of()), new byte[0])));
        assertEquals("bad_header", refusal(frames(header(ids(1001), Collections.nCopies(1001, 0L)), new byte[0])));
        assertEquals(1000, Codec.unpack(frames(header(ids(1000), Collections.nCopies(1000, 0L)), new byte[0]))
                .bodies().size());
        // ids and sizes differ in number and the frame is over 1 MiB: the header decides.
        assertEquals("bad_header", refusal(frames(header(List.of("a", "b"), List.of(1L)),
                new byte[Wire.MAX_PACKED_BYTES + 1])));
    }

    @Test
    void sizesAreAnIntlist() {
        byte[] one = {'x'};
        Map<String, Object> missing = header(List.of("a"), List.of(1L));
        missing.remove("sizes");
        assertEquals("bad_header", refusal(frames(missing, one)));
        assertEquals("bad_header", refusal(frames(header(List.of("a"), null), one))); // required: nil is absent
        assertEquals("bad_header", refusal(frames(header(List.of("a"), List.of(true)), one)));
        assertEquals("bad_header", refusal(frames(header(List.of("a"), List.of(1.0)), one)));
        assertEquals("bad_header", refusal(frames(header(List.of("a"), List.of(-1L)), one)));
        assertEquals("bad_header", refusal(frames(header(List.of("a"), List.of("1")), one)));
        assertEquals("bad_header", refusal(frames(header(List.of("a"), Arrays.asList((Object) null)), one)));
        assertEquals("bad_header", refusal(frames(header(List.of("a"), List.of(List.of(1L))), one)));
        Map<String, Object> notList = header(List.of("a"), List.of());
        notList.put("sizes", 1L);
        assertEquals("bad_header", refusal(frames(notList, one)));
    }

    @Test
    void anyIntEncodingIsASize() throws IOException {
        // sizes [7] as a uint64 (cf 00..07), where a packer would write a fixint.
        try (MessageBufferPacker out = MessagePack.newDefaultBufferPacker()) {
            out.packMapHeader(4);
            out.packString("id").packString("m");
            out.packString("queue").packString("q");
            out.packString("ids").packArrayHeader(1).packString("a");
            out.packString("sizes").packArrayHeader(1);
            out.addPayload(new byte[] {(byte) 0xcf, 0, 0, 0, 0, 0, 0, 0, 7});
            List<byte[]> frames = List.of(Codec.commandFrame(Wire.PUSH_PACKED), out.toByteArray(),
                    "cat.png".getBytes(UTF_8));
            Message m = Codec.unpack(frames);
            assertEquals(List.of(7L), m.header().get("sizes"));
            assertArrayEquals("cat.png".getBytes(UTF_8), m.bodies().get(0));
        }
    }

    @Test
    void framesOtherThanOneAfterTheHeaderAreBadFrame() {
        byte[] h = Msgpack.write(header(List.of("a", "b"), List.of(1L, 1L)));
        byte[] cmd = Codec.commandFrame(Wire.PUSH_PACKED);
        assertEquals("bad_frame", refusal(List.of(cmd, h)));
        assertEquals("bad_frame", refusal(List.of(cmd, h, new byte[] {'x'}, new byte[] {'y'})));
        // Even with a header that would be refused: the frame count is checked first.
        assertEquals("bad_frame", refusal(List.of(cmd, new byte[] {(byte) 0xc1})));
    }

    @Test
    void readyMayAskForPacked() {
        Map<String, Object> ready = new LinkedHashMap<>();
        ready.put("id", "r");
        ready.put("names", List.of("thumbs"));
        ready.put("credit", 500L);
        ready.put("packed", true);
        assertEquals(true, Codec.unpack(Codec.packControl(Wire.READY, ready)).header().get("packed"));
        ready.put("packed", 1L); // an int is not a bool
        assertEquals("bad_header", refusal(Codec.packControl(Wire.READY, ready)));
    }

    @Test
    void packingRefusesWhatNoReceiverTakes() {
        assertThrows(IllegalArgumentException.class, () -> Codec.packPacked(Wire.PUSH_PACKED, HEADER, List.of()));
        List<byte[]> many = new ArrayList<>(Collections.nCopies(Wire.MAX_ITEMS_PER_MESSAGE + 1, new byte[0]));
        assertThrows(IllegalArgumentException.class, () -> Codec.packPacked(Wire.PUSH_PACKED, HEADER, many));
        List<byte[]> tooBig = List.of(new byte[Wire.MAX_PACKED_BYTES], new byte[1]);
        assertThrows(IllegalArgumentException.class, () -> Codec.packPacked(Wire.PUSH_PACKED, HEADER, tooBig));
        assertThrows(IllegalArgumentException.class,
                () -> Codec.packPacked(Wire.PUSH_BATCH, HEADER, List.of(new byte[0])));
        assertThrows(IllegalArgumentException.class,
                () -> Codec.packBatch(Wire.PUSH_PACKED, HEADER, List.of(new byte[0])));
        assertThrows(IllegalArgumentException.class, () -> Codec.packControl(Wire.JOB_PACKED, HEADER));
    }
}
