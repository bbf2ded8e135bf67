// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Bytes to messages and back for ZMSH/1: the only code that builds or parses frames.
 *
 * <p>{@code unpack} checks in the order of SPEC.md section 10 and throws {@link ProtocolException}
 * with the protocol error code for the first fault. Stateless and thread-safe.
 */
final class Codec {
    private Codec() {}

    /** Frame 0 of {@code command}: "ZM", the version, the command byte. */
    static byte[] commandFrame(int command) {
        return new byte[] {Wire.SIGNATURE_0, Wire.SIGNATURE_1, (byte) Wire.VERSION, (byte) command};
    }

    /** Frames of a control command: the command frame and one header. */
    static List<byte[]> packControl(int command, Map<String, ?> header) {
        if (Wire.ITEM_COMMANDS.contains(command) || Wire.BATCH_COMMANDS.contains(command)
                || Wire.PACKED_COMMANDS.contains(command)) {
            throw new IllegalArgumentException(Wire.COMMAND_NAMES.get(command) + " is not a control command");
        }
        return List.of(commandFrame(command), Msgpack.write(header));
    }

    /** Frames of an item command carrying one or more items. */
    static List<byte[]> packItems(int command, List<Item> items) {
        if (!Wire.ITEM_COMMANDS.contains(command)) {
            throw new IllegalArgumentException(Wire.COMMAND_NAMES.get(command) + " is not an item command");
        }
        if (items.isEmpty() || items.size() > Wire.MAX_ITEMS_PER_MESSAGE) {
            throw new IllegalArgumentException("an item message carries 1 to " + Wire.MAX_ITEMS_PER_MESSAGE + " items");
        }
        List<byte[]> frames = new ArrayList<>(1 + 2 * items.size());
        frames.add(commandFrame(command));
        for (Item item : items) {
            frames.add(Msgpack.write(item.header()));
            frames.add(item.body());
        }
        return frames;
    }

    /** Frames of a batch command: one header whose "ids" name the bodies, in order (SPEC.md 3.4). */
    static List<byte[]> packBatch(int command, Map<String, ?> header, List<byte[]> bodies) {
        return assembleBatch(command, Msgpack.write(header), bodies);
    }

    /** Frames of a batch command from a header frame made by {@link #packHeader} and its bodies. */
    static List<byte[]> assembleBatch(int command, byte[] header, List<byte[]> bodies) {
        if (!Wire.BATCH_COMMANDS.contains(command)) {
            throw new IllegalArgumentException(Wire.COMMAND_NAMES.get(command) + " is not a batch command");
        }
        if (bodies.isEmpty() || bodies.size() > Wire.MAX_ITEMS_PER_MESSAGE) {
            throw new IllegalArgumentException("a batch message carries 1 to " + Wire.MAX_ITEMS_PER_MESSAGE + " bodies");
        }
        List<byte[]> frames = new ArrayList<>(2 + bodies.size());
        frames.add(commandFrame(command));
        frames.add(header);
        frames.addAll(bodies);
        return frames;
    }

    /**
     * Frames of a packed command (SPEC.md 3.5): the header plus "sizes", the length of each body
     * in order, and the bodies back to back in one frame. As protocol/codec.py's pack_packed,
     * "sizes" is added as the last key (or replaces a "sizes" the header already has, in place).
     *
     * @throws IllegalArgumentException for other than 1 to 1000 bodies, or bodies that together
     *     exceed {@link Wire#MAX_PACKED_BYTES} (send those as a batch)
     */
    static List<byte[]> packPacked(int command, Map<String, ?> header, List<byte[]> bodies) {
        if (!Wire.PACKED_COMMANDS.contains(command)) {
            throw new IllegalArgumentException(Wire.COMMAND_NAMES.get(command) + " is not a packed command");
        }
        if (bodies.isEmpty() || bodies.size() > Wire.MAX_ITEMS_PER_MESSAGE) {
            throw new IllegalArgumentException("a packed message carries 1 to " + Wire.MAX_ITEMS_PER_MESSAGE
                    + " bodies");
        }
        List<Long> sizes = new ArrayList<>(bodies.size());
        for (byte[] body : bodies) {
            sizes.add((long) body.length);
        }
        Map<String, Object> full = new LinkedHashMap<>(header);
        full.put("sizes", sizes);
        return assemblePacked(command, Msgpack.write(full), bodies);
    }

    /**
     * Frames of a packed command from a header frame of at most {@link Wire#MAX_HEADER_BYTES} (its
     * "sizes" already naming each body's length, in order) and its bodies, put back to back in one
     * frame.
     *
     * @throws IllegalArgumentException for bodies that together exceed {@link Wire#MAX_PACKED_BYTES}
     */
    static List<byte[]> assemblePacked(int command, byte[] header, List<byte[]> bodies) {
        if (!Wire.PACKED_COMMANDS.contains(command)) {
            throw new IllegalArgumentException(Wire.COMMAND_NAMES.get(command) + " is not a packed command");
        }
        if (bodies.isEmpty() || bodies.size() > Wire.MAX_ITEMS_PER_MESSAGE) {
            throw new IllegalArgumentException("a packed message carries 1 to " + Wire.MAX_ITEMS_PER_MESSAGE
                    + " bodies");
        }
        long total = 0;
        for (byte[] body : bodies) {
            total += body.length;
        }
        if (total > Wire.MAX_PACKED_BYTES) {
            throw new IllegalArgumentException("packed bodies of " + total + " bytes exceed " + Wire.MAX_PACKED_BYTES);
        }
        byte[] packed = new byte[(int) total];
        int at = 0;
        for (byte[] body : bodies) {
            System.arraycopy(body, 0, packed, at, body.length);
            at += body.length;
        }
        return List.of(commandFrame(command), header, packed);
    }

    /**
     * One header frame. Checked here, in the caller's thread, so an I/O thread that assembles
     * frames later ({@link #assemble}) never meets a header it cannot send.
     *
     * @throws IllegalArgumentException for values msgpack cannot carry or a header over 64 KiB
     */
    static byte[] packHeader(Map<String, ?> header) {
        byte[] raw = Msgpack.write(header);
        if (raw.length > Wire.MAX_HEADER_BYTES) {
            throw new IllegalArgumentException("header of " + raw.length + " bytes exceeds " + Wire.MAX_HEADER_BYTES);
        }
        return raw;
    }

    /** Frames of an item command from header frames made by {@link #packHeader} and their bodies. */
    static List<byte[]> assemble(int command, List<byte[]> headers, List<byte[]> bodies) {
        List<byte[]> frames = new ArrayList<>(1 + 2 * headers.size());
        frames.add(commandFrame(command));
        for (int i = 0; i < headers.size(); i++) {
            frames.add(headers.get(i));
            frames.add(bodies.get(i));
        }
        return frames;
    }

    /** Frames of a single-item command. */
    static List<byte[]> packItem(int command, Map<String, Object> header, byte[] body) {
        return packItems(command, List.of(new Item(header, body)));
    }

    /** Decode a broker-endpoint message (routing id removed), applying no body limit. */
    static Message unpack(List<byte[]> frames) {
        return unpack(frames, -1);
    }

    /**
     * Decode a broker-endpoint message (routing id removed).
     *
     * @param maxBody the receiver's body limit in bytes (too_large beyond it), or negative for none
     */
    static Message unpack(List<byte[]> frames, long maxBody) {
        if (frames.size() < 2) {
            throw new ProtocolException(Wire.E_BAD_FRAME, "message has " + frames.size()
                    + " frame(s); need a command frame and a header");
        }
        byte[] head = frames.get(0);
        if (head.length != 4 || head[0] != Wire.SIGNATURE_0 || head[1] != Wire.SIGNATURE_1) {
            throw new ProtocolException(Wire.E_BAD_FRAME, "frame 0 is not a ZM command frame");
        }
        if (head[2] != Wire.VERSION) {
            throw new ProtocolException(Wire.E_BAD_VERSION, "protocol version " + (head[2] & 0xff)
                    + " not supported (want " + Wire.VERSION + ")");
        }
        int command = head[3] & 0xff;
        String name = Wire.COMMAND_NAMES.get(command);
        if (name == null) {
            throw new ProtocolException(Wire.E_UNKNOWN_COMMAND, String.format("unknown command 0x%02x", command));
        }
        if (Wire.ITEM_COMMANDS.contains(command)) {
            int count = frames.size() - 1;
            if (count % 2 != 0) {
                throw new ProtocolException(Wire.E_BAD_FRAME, name + " needs (header, body) pairs, got "
                        + count + " frames");
            }
            if (count / 2 > Wire.MAX_ITEMS_PER_MESSAGE) {
                throw new ProtocolException(Wire.E_BAD_FRAME, "more than " + Wire.MAX_ITEMS_PER_MESSAGE
                        + " items in one message");
            }
            List<Item> items = new ArrayList<>(count / 2);
            for (int i = 1; i < frames.size(); i += 2) {
                byte[] body = frames.get(i + 1);
                if (maxBody >= 0 && body.length > maxBody) {
                    throw new ProtocolException(Wire.E_TOO_LARGE, "body of " + body.length
                            + " bytes exceeds the limit of " + maxBody);
                }
                items.add(new Item(unpackHeader(frames.get(i), command), body));
            }
            return new Message(command, items.get(0).header(), Collections.unmodifiableList(items));
        }
        if (Wire.BATCH_COMMANDS.contains(command)) {
            return unpackBatch(frames, command, name, maxBody);
        }
        if (Wire.PACKED_COMMANDS.contains(command)) {
            return unpackPacked(frames, command, name, maxBody);
        }
        if (frames.size() != 2) {
            throw new ProtocolException(Wire.E_BAD_FRAME, name + " takes exactly one header frame, got "
                    + (frames.size() - 1));
        }
        return new Message(command, unpackHeader(frames.get(1), command), List.of());
    }

    /** Checks in the order of protocol/codec.py: frame counts, the header, ids against bodies, repeats, sizes. */
    private static Message unpackBatch(List<byte[]> frames, int command, String name, long maxBody) {
        List<byte[]> bodies = frames.subList(2, frames.size());
        if (bodies.isEmpty()) {
            throw new ProtocolException(Wire.E_BAD_FRAME, name + " needs a header and at least one body frame");
        }
        if (bodies.size() > Wire.MAX_ITEMS_PER_MESSAGE) {
            throw new ProtocolException(Wire.E_BAD_FRAME, "more than " + Wire.MAX_ITEMS_PER_MESSAGE
                    + " bodies in one message");
        }
        Map<String, Object> header = unpackHeader(frames.get(1), command);
        List<?> ids = (List<?>) header.get("ids");
        if (ids.size() != bodies.size()) {
            throw new ProtocolException(Wire.E_BAD_FRAME, name + " names " + ids.size() + " id(s) for "
                    + bodies.size() + " body frame(s)");
        }
        if (new HashSet<>(ids).size() != ids.size()) {
            throw new ProtocolException(Wire.E_BAD_HEADER, name + " repeats a job id");
        }
        if (maxBody >= 0) {
            for (byte[] body : bodies) {
                if (body.length > maxBody) {
                    throw new ProtocolException(Wire.E_TOO_LARGE, "body of " + body.length
                            + " bytes exceeds the limit of " + maxBody);
                }
            }
        }
        return new Message(command, header, List.of(), List.copyOf(bodies));
    }

    /**
     * SPEC.md 3.5 and 10, in the order of protocol/codec.py: one frame after the header, the header,
     * ids and sizes, the packed frame's length, the sizes against it, then each body's size.
     */
    private static Message unpackPacked(List<byte[]> frames, int command, String name, long maxBody) {
        if (frames.size() != 3) {
            throw new ProtocolException(Wire.E_BAD_FRAME, name + " takes a header and exactly one body frame, got "
                    + (frames.size() - 1) + " frame(s)");
        }
        Map<String, Object> header = unpackHeader(frames.get(1), command);
        List<?> ids = (List<?>) header.get("ids");
        List<?> sizes = (List<?>) header.get("sizes");
        if (ids.isEmpty() || ids.size() > Wire.MAX_ITEMS_PER_MESSAGE) {
            throw new ProtocolException(Wire.E_BAD_HEADER, name + " needs 1 to " + Wire.MAX_ITEMS_PER_MESSAGE
                    + " ids, got " + ids.size());
        }
        if (sizes.size() != ids.size()) {
            throw new ProtocolException(Wire.E_BAD_HEADER, name + " names " + ids.size() + " id(s) and "
                    + sizes.size() + " size(s)");
        }
        if (new HashSet<>(ids).size() != ids.size()) {
            throw new ProtocolException(Wire.E_BAD_HEADER, name + " repeats a job id");
        }
        byte[] packed = frames.get(2);
        if (packed.length > Wire.MAX_PACKED_BYTES) {
            throw new ProtocolException(Wire.E_TOO_LARGE, name + " body frame of " + packed.length
                    + " bytes exceeds " + Wire.MAX_PACKED_BYTES);
        }
        // Each size is a Long >= 0 or a BigInteger past Long.MAX_VALUE (Schema checked): stop at the
        // first that overruns the frame, so the sum never overflows.
        int[] ends = new int[sizes.size()];
        int end = 0;
        int largest = 0;
        for (int i = 0; i < ends.length; i++) {
            Object size = sizes.get(i);
            if (!(size instanceof Long n) || n > packed.length - end) {
                throw new ProtocolException(Wire.E_BAD_FRAME, name + " sizes add up to more than the "
                        + packed.length + " bytes of the body frame");
            }
            end += n.intValue();
            largest = Math.max(largest, n.intValue());
            ends[i] = end;
        }
        if (end != packed.length) {
            throw new ProtocolException(Wire.E_BAD_FRAME, name + " sizes add up to " + end
                    + " bytes, the body frame has " + packed.length);
        }
        if (maxBody >= 0 && largest > maxBody) {
            throw new ProtocolException(Wire.E_TOO_LARGE, "body of " + largest + " bytes exceeds the limit of "
                    + maxBody);
        }
        List<byte[]> bodies = new ArrayList<>(ends.length);
        int start = 0;
        for (int stop : ends) {
            bodies.add(Arrays.copyOfRange(packed, start, stop));
            start = stop;
        }
        return new Message(command, header, List.of(), Collections.unmodifiableList(bodies));
    }

    /** Decode one header frame and check it against the command's fields. */
    static Map<String, Object> unpackHeader(byte[] raw, int command) {
        if (raw.length > Wire.MAX_HEADER_BYTES) {
            throw new ProtocolException(Wire.E_BAD_HEADER, "header of " + raw.length + " bytes exceeds "
                    + Wire.MAX_HEADER_BYTES);
        }
        Object value = Msgpack.read(raw);
        if (!(value instanceof Map)) {
            throw new ProtocolException(Wire.E_BAD_HEADER, "header is not a map");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> header = (Map<String, Object>) value;
        Schema.check(command, header);
        return header;
    }

    /** Frames on the PUB endpoint: topic, header, body. */
    static List<byte[]> packEvent(String topic, Map<String, Object> header, byte[] body) {
        return List.of(topic.getBytes(StandardCharsets.UTF_8), Msgpack.write(header), body);
    }

    /** A decoded PUB event: its topic, header and body. */
    record RawEvent(String topic, Map<String, Object> header, byte[] body) {}

    /** Decode an event as a SUB socket receives it (SPEC.md section 7). */
    static RawEvent unpackEvent(List<byte[]> frames) {
        if (frames.size() != 3) {
            throw new ProtocolException(Wire.E_BAD_FRAME, "event has " + frames.size()
                    + " frame(s); need topic, header, body");
        }
        String topic;
        try {
            topic = Msgpack.utf8(frames.get(0));
        } catch (ProtocolException e) {
            throw new ProtocolException(Wire.E_BAD_FRAME, "topic is not UTF-8");
        }
        Map<String, Object> header = unpackHeader(frames.get(1), Wire.PUBLISH);
        // Optional in a PUBLISH, but the broker always stamps them on an event:
        // without them a subscriber cannot see a gap or a broker restart.
        for (String field : new String[] {"seq", "epoch"}) {
            if (header.get(field) == null) {
                throw new ProtocolException(Wire.E_BAD_HEADER, "event header lacks '" + field + "'");
            }
        }
        if (!topic.equals(header.get("topic"))) {
            throw new ProtocolException(Wire.E_BAD_HEADER, "topic frame and header topic differ");
        }
        return new RawEvent(topic, header, frames.get(2));
    }
}
