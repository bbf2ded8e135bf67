// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The messages a {@link Client} sends and how it reads its answers' headers: the header maps of
 * PUSH, REQUEST, PUBLISH and ADMIN (SPEC.md sections 5 to 12), packed by the {@link Codec}.
 */
final class ClientFrames {
    private ClientFrames() {}

    /**
     * One job for the push window: its PUSH header packed once, sent (again) with the same id and
     * the same {@code fields} ({@link PushOptions#fields}: at_ms, unique_key, unique_ttl_ms).
     */
    static PendingPush push(String id, String queue, byte[] body, Map<String, ?> headers, Map<String, Object> fields,
            Duration timeout) {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("id", id);
        header.put("queue", queue);
        putHeaders(header, headers);
        header.putAll(fields);
        return new PendingPush(id, Codec.packHeader(header), body, timeout.toNanos());
    }

    /**
     * A REQUEST under any id and remaining deadline: an idempotent request is sent again this way
     * after a move. {@code fields}: more header fields (trace, parent).
     */
    static ClientOp.Again request(String service, byte[] body, Map<String, ?> headers, boolean wait,
            Map<String, Object> fields) {
        return (id, ms) -> {
            Map<String, Object> header = new LinkedHashMap<>();
            header.put("id", id);
            header.put("service", service);
            header.put("timeout_ms", Math.max(1, ms));
            if (wait) {
                header.put("wait", true);
            }
            putHeaders(header, headers);
            header.putAll(fields);
            return Codec.assemble(Wire.REQUEST, List.of(Codec.packHeader(header)), List.of(body));
        };
    }

    /** The application headers of a REPLY; empty when it has none. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> replyHeaders(Item answer) {
        return answer.header().get("headers") instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
    }

    static List<byte[]> publish(String id, String topic, byte[] body, Map<String, ?> headers) {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("id", id);
        header.put("topic", topic);
        putHeaders(header, headers);
        return Codec.assemble(Wire.PUBLISH, List.of(Codec.packHeader(header)), List.of(body));
    }

    static List<byte[]> admin(String id, String op, Map<String, ?> args) {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("id", id);
        header.put("op", op);
        if (args != null && !args.isEmpty()) {
            header.put("args", args);
        }
        return Codec.packControl(Wire.ADMIN, header);
    }

    /** An ADMIN reply's body: a MessagePack map (empty body: empty map). */
    @SuppressWarnings("unchecked")
    static Map<String, Object> adminAnswer(String op, Item answer) {
        Object body = answer.body().length == 0 ? Map.of() : Msgpack.read(answer.body());
        if (!(body instanceof Map)) {
            throw new ZeromeshException(Wire.E_BAD_HEADER, "admin '" + op + "': the broker answered a non-map");
        }
        return (Map<String, Object>) body;
    }

    private static void putHeaders(Map<String, Object> header, Map<String, ?> headers) {
        if (headers != null && !headers.isEmpty()) {
            header.put("headers", headers);
        }
    }
}
