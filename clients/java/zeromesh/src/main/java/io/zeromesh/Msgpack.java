// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.msgpack.core.ExtensionTypeHeader;
import org.msgpack.core.MessageBufferPacker;
import org.msgpack.core.MessageFormat;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessagePackException;
import org.msgpack.core.MessageUnpacker;

/**
 * msgpack values to and from Java, with the strictness of SPEC.md section 4: map keys are str
 * and unique at every depth, every str is valid UTF-8, nothing follows the value.
 *
 * <p>Decoded types: nil {@code null}, bool {@link Boolean}, int {@link Long} (or {@link BigInteger}
 * above {@code Long.MAX_VALUE}), float32 {@link Float}, float64 {@link Double}, str {@link String},
 * bin {@code byte[]}, array {@link List}, map {@link LinkedHashMap} in wire order, ext {@link Ext}.
 * Encoding uses the smallest form of each, so decoding then encoding a canonical header
 * reproduces its bytes.
 */
final class Msgpack {
    private Msgpack() {}

    /**
     * At most this many maps and arrays nested in one another, the header map included. SPEC.md
     * sets no limit; this is msgpack-python's (the broker's decoder), so both refuse the same
     * headers, and recursion stops long before the stack does.
     */
    static final int MAX_DEPTH = 1024;

    /** Decode exactly one value from {@code raw}; any fault is a {@link ProtocolException} bad_header. */
    static Object read(byte[] raw) {
        try (MessageUnpacker in = MessagePack.newDefaultUnpacker(raw)) {
            Object value = new Reader(in, raw.length).value(0);
            if (in.hasNext()) {
                throw bad("bytes after the msgpack value");
            }
            return value;
        } catch (IOException | MessagePackException e) {
            throw bad("not valid msgpack: " + e.getMessage());
        }
    }

    /** Encode one value (types as {@link Msgpack}; also Integer, Short, Byte, any Collection). */
    static byte[] write(Object value) {
        try (MessageBufferPacker out = MessagePack.newDefaultBufferPacker()) {
            writeValue(out, value);
            return out.toByteArray();
        } catch (IOException e) {
            throw new IllegalStateException("packing into memory failed", e);
        }
    }

    private static ProtocolException bad(String why) {
        return new ProtocolException(Wire.E_BAD_HEADER, why);
    }

    private static final class Reader {
        private final MessageUnpacker in;
        private final long size;

        Reader(MessageUnpacker in, long size) {
            this.in = in;
            this.size = size;
        }

        /** A length read from the wire, checked against what is left so a forged length cannot allocate gigabytes. */
        private int payload(long length) {
            if (length < 0 || length > size - in.getTotalReadBytes()) {
                throw bad("truncated msgpack value");
            }
            return (int) length;
        }

        private static void nest(int depth) {
            if (depth >= MAX_DEPTH) {
                throw bad("maps and arrays nested more than " + MAX_DEPTH + " deep");
            }
        }

        Object value(int depth) throws IOException {
            MessageFormat format = in.getNextFormat();
            switch (format.getValueType()) {
                case NIL:
                    in.unpackNil();
                    return null;
                case BOOLEAN:
                    return in.unpackBoolean();
                case INTEGER:
                    if (format == MessageFormat.UINT64) {
                        BigInteger big = in.unpackBigInteger();
                        return big.bitLength() < 64 ? (Object) big.longValue() : big;
                    }
                    return in.unpackLong();
                case FLOAT:
                    return format == MessageFormat.FLOAT32 ? (Object) in.unpackFloat() : (Object) in.unpackDouble();
                case STRING:
                    return utf8(in.readPayload(payload(in.unpackRawStringHeader())));
                case BINARY:
                    return in.readPayload(payload(in.unpackBinaryHeader()));
                case ARRAY: {
                    nest(depth);
                    int n = in.unpackArrayHeader();
                    List<Object> list = new ArrayList<>(Math.min(n, 64));
                    payload(n); // each element takes at least one byte
                    for (int i = 0; i < n; i++) {
                        list.add(value(depth + 1));
                    }
                    return list;
                }
                case MAP: {
                    nest(depth);
                    int n = in.unpackMapHeader();
                    payload(2L * n);
                    Map<String, Object> map = new LinkedHashMap<>();
                    for (int i = 0; i < n; i++) {
                        if (in.getNextFormat().getValueType() != org.msgpack.value.ValueType.STRING) {
                            throw bad("a map key is not a str");
                        }
                        String key = (String) value(depth + 1);
                        if (map.containsKey(key)) {
                            throw bad("map has a repeated key '" + key + "'");
                        }
                        map.put(key, value(depth + 1));
                    }
                    return map;
                }
                case EXTENSION: {
                    ExtensionTypeHeader ext = in.unpackExtensionTypeHeader();
                    return new Ext(ext.getType(), in.readPayload(payload(ext.getLength())));
                }
                default:
                    throw bad("unknown msgpack type " + format);
            }
        }
    }

    static String utf8(byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw bad("a str is not valid UTF-8");
        }
    }

    private static void writeValue(MessageBufferPacker out, Object value) throws IOException {
        if (value == null) {
            out.packNil();
        } else if (value instanceof String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            out.packRawStringHeader(b.length);
            out.writePayload(b);
        } else if (value instanceof Boolean b) {
            out.packBoolean(b);
        } else if (value instanceof Long || value instanceof Integer || value instanceof Short
                || value instanceof Byte) {
            out.packLong(((Number) value).longValue());
        } else if (value instanceof BigInteger big) {
            out.packBigInteger(big);
        } else if (value instanceof Double d) {
            out.packDouble(d);
        } else if (value instanceof Float f) {
            out.packFloat(f);
        } else if (value instanceof byte[] b) {
            out.packBinaryHeader(b.length);
            out.writePayload(b);
        } else if (value instanceof Map<?, ?> map) {
            out.packMapHeader(map.size());
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!(e.getKey() instanceof String)) {
                    throw new IllegalArgumentException("ZMSH/1 map keys must be strings, got " + e.getKey());
                }
                writeValue(out, e.getKey());
                writeValue(out, e.getValue());
            }
        } else if (value instanceof Collection<?> list) {
            out.packArrayHeader(list.size());
            for (Object item : list) {
                writeValue(out, item);
            }
        } else if (value instanceof Ext ext) {
            out.packExtensionTypeHeader((byte) ext.type(), ext.data().length);
            out.writePayload(ext.data());
        } else {
            throw new IllegalArgumentException("cannot encode a " + value.getClass().getName() + " as msgpack");
        }
    }
}
