// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** The header fields of each command and their types (SPEC.md sections 4, 6 and 7). */
final class Schema {
    private Schema() {}

    enum Kind { STR, INT, BOOL, MAP, STRLIST, INTLIST }

    record Field(String name, Kind kind, boolean required) {}

    private static Field req(String name, Kind kind) {
        return new Field(name, kind, true);
    }

    private static Field opt(String name, Kind kind) {
        return new Field(name, kind, false);
    }

    private static final Kind STR = Kind.STR;
    private static final Kind INT = Kind.INT;
    private static final Kind BOOL = Kind.BOOL;
    private static final Kind MAP = Kind.MAP;
    private static final Kind STRLIST = Kind.STRLIST;
    private static final Kind INTLIST = Kind.INTLIST;

    private static final Map<Integer, List<Field>> FIELDS = Map.ofEntries(
            Map.entry(Wire.PUSH, List.of(req("id", STR), req("queue", STR), opt("trace", STR), opt("parent", STR),
                    opt("headers", MAP))),
            Map.entry(Wire.CONFIRM, List.of(req("id", STR), req("ids", STRLIST), opt("batches", STRLIST))),
            Map.entry(Wire.JOB, List.of(req("id", STR), req("queue", STR), req("attempt", INT), req("trace", STR),
                    req("lease_ms", INT), opt("error", STR), opt("headers", MAP))),
            Map.entry(Wire.ACK, List.of(req("id", STR), req("ids", STRLIST))),
            Map.entry(Wire.NACK, List.of(req("id", STR), req("re", STR), req("error", STR), opt("retry", BOOL))),
            Map.entry(Wire.REQUEST, List.of(req("id", STR), req("service", STR), req("timeout_ms", INT),
                    opt("trace", STR), opt("parent", STR), opt("wait", BOOL), opt("headers", MAP), opt("attempt", INT),
                    opt("error", STR))),
            Map.entry(Wire.REPLY, List.of(req("id", STR), req("re", STR), opt("headers", MAP))),
            Map.entry(Wire.ERROR, List.of(req("id", STR), req("code", STR), req("message", STR), opt("re", STR),
                    opt("name", STR), opt("traceback", STR))),
            Map.entry(Wire.PUBLISH, List.of(req("id", STR), req("topic", STR), opt("headers", MAP), opt("seq", INT),
                    opt("epoch", STR))),
            Map.entry(Wire.READY, List.of(req("id", STR), req("names", STRLIST), req("credit", INT),
                    opt("label", STR), opt("lang", STR), opt("host", STR), opt("batch", BOOL), opt("packed", BOOL))),
            Map.entry(Wire.CREDIT, List.of(req("id", STR), req("credit", INT))),
            Map.entry(Wire.HEARTBEAT, List.of(req("id", STR), opt("epoch", STR), opt("re", STR))),
            Map.entry(Wire.DISCONNECT, List.of(req("id", STR), opt("reason", STR))),
            Map.entry(Wire.EXTEND, List.of(req("id", STR), req("ids", STRLIST), req("lease_ms", INT))),
            Map.entry(Wire.CANCEL, List.of(req("id", STR), req("re", STR))),
            Map.entry(Wire.ADMIN, List.of(req("id", STR), req("op", STR), opt("args", MAP))),
            Map.entry(Wire.PUSH_BATCH, List.of(req("id", STR), req("queue", STR), req("ids", STRLIST),
                    opt("trace", STR), opt("parent", STR), opt("headers", MAP))),
            Map.entry(Wire.JOB_BATCH, List.of(req("id", STR), req("queue", STR), req("lease_ms", INT),
                    req("ids", STRLIST), opt("headers", MAP))),
            Map.entry(Wire.PUSH_PACKED, List.of(req("id", STR), req("queue", STR), req("ids", STRLIST),
                    req("sizes", INTLIST), opt("trace", STR), opt("parent", STR), opt("headers", MAP))),
            Map.entry(Wire.JOB_PACKED, List.of(req("id", STR), req("queue", STR), req("lease_ms", INT),
                    req("ids", STRLIST), req("sizes", INTLIST), opt("headers", MAP))));

    /** str fields that name or identify things: 1 to 255 bytes. */
    private static final Set<String> BOUNDED = Set.of("id", "re", "queue", "service", "topic", "trace", "parent");

    /** Check a decoded header against the command's fields; unknown fields are ignored. */
    static void check(int command, Map<String, Object> header) {
        for (Field field : FIELDS.get(command)) {
            Object value = header.get(field.name());
            if (value == null) {
                if (field.required()) {
                    throw bad(Wire.COMMAND_NAMES.get(command) + " header lacks '" + field.name() + "'");
                }
                continue; // optional nil counts as absent
            }
            if (!matches(field, value)) {
                throw bad("'" + field.name() + "' must be " + field.kind().name().toLowerCase()
                        + (BOUNDED.contains(field.name()) ? " of 1.." + Wire.MAX_NAME_BYTES + " bytes" : ""));
            }
        }
    }

    private static boolean matches(Field field, Object value) {
        switch (field.kind()) {
            case STR:
                return value instanceof String s && (!BOUNDED.contains(field.name()) || isName(s));
            case INT:
                return isInt(value);
            case BOOL:
                return value instanceof Boolean;
            case MAP:
                return value instanceof Map; // keys were checked to be str while decoding
            case INTLIST:
                if (!(value instanceof List<?> list)) {
                    return false;
                }
                for (Object item : list) {
                    if (!isInt(item)) {
                        return false;
                    }
                }
                return true;
            default: // STRLIST: names and ids, bounded like the single-valued ones
                if (!(value instanceof List<?> list)) {
                    return false;
                }
                for (Object item : list) {
                    if (!(item instanceof String s) || !isName(s)) {
                        return false;
                    }
                }
                return true;
        }
    }

    /** 0 to 2^64-1: a Long, or a BigInteger above Long.MAX_VALUE; never a Boolean or a float. */
    static boolean isInt(Object value) {
        return value instanceof Long l ? l >= 0 : value instanceof BigInteger b && b.signum() >= 0;
    }

    /** 1 to 255 bytes of UTF-8. */
    static boolean isName(String s) {
        if (s.isEmpty()) {
            return false;
        }
        if (s.length() * 3 <= Wire.MAX_NAME_BYTES) {
            return true; // at most 3 bytes per UTF-16 unit
        }
        return s.getBytes(StandardCharsets.UTF_8).length <= Wire.MAX_NAME_BYTES;
    }

    private static ProtocolException bad(String why) {
        return new ProtocolException(Wire.E_BAD_HEADER, why);
    }
}
