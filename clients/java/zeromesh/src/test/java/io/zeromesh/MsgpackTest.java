// SPDX-License-Identifier: MIT
package io.zeromesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Msgpack limits the vectors do not cover. */
class MsgpackTest {
    /** A PUSH header with {@code depth} arrays nested in an unknown field. */
    private static byte[] nested(int depth) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(Msgpack.write(Map.of("id", "x", "queue", "q")));
        byte[] header = out.toByteArray();
        header[0] = (byte) 0x83; // three entries: add "z" below
        out.reset();
        out.writeBytes(header);
        out.writeBytes(new byte[] {(byte) 0xa1, 'z'});
        for (int i = 0; i < depth; i++) {
            out.write(0x91);
        }
        out.write(0x01);
        return out.toByteArray();
    }

    @Test
    void nestingLimitMatchesTheBrokersDecoder() {
        // msgpack-python accepts the header map plus 1023 nested arrays, and refuses 1024.
        Codec.unpackHeader(nested(1023), Wire.PUSH);
        ProtocolException e = assertThrows(ProtocolException.class, () -> Codec.unpackHeader(nested(1024), Wire.PUSH));
        assertEquals("bad_header", e.code());
        assertThrows(ProtocolException.class, () -> Codec.unpackHeader(nested(100_000), Wire.PUSH));
    }

    @Test
    void forgedLengthsDoNotAllocate() {
        // str32 claiming 2 GiB, array32 claiming 2^32-1 elements, in a 10-byte header
        byte[] str = {(byte) 0x81, (byte) 0xa1, 'k', (byte) 0xdb, 0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xff, 'a'};
        byte[] arr = {(byte) 0x81, (byte) 0xa1, 'k', (byte) 0xdd, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 1};
        assertEquals("bad_header", assertThrows(ProtocolException.class, () -> Msgpack.read(str)).code());
        assertEquals("bad_header", assertThrows(ProtocolException.class, () -> Msgpack.read(arr)).code());
    }

    @Test
    void uint64AndNegativeIntsRoundTrip() {
        BigInteger max = new BigInteger("18446744073709551615");
        Map<String, Object> value = Map.of("big", max, "neg", -5L, "list", List.of(1L, "a"));
        assertEquals(value, Msgpack.read(Msgpack.write(value)));
    }
}
