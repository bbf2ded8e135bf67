// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the jobs of one pushMany share: the fields of their PUSH_PACKED / PUSH_BATCH header but id,
 * ids, sizes. {@code fields} are more of those ({@link PushOptions#fields}: at_ms), fixed once per
 * call so that every resend schedules the jobs for the same instant.
 */
record BatchGroup(String queue, Map<String, ?> headers, Map<String, Object> fields) {
    BatchGroup(String queue, Map<String, ?> headers) {
        this(queue, headers, Map.of());
    }

    /**
     * The PUSH_PACKED header frame naming {@code jobIds} with the sizes of {@code bodies}, or
     * null when the bodies together exceed {@link Wire#MAX_PACKED_BYTES} or the header exceeds
     * {@link Wire#MAX_HEADER_BYTES}: then they go as PUSH_BATCH, whose header is smaller.
     *
     * @throws IllegalArgumentException for values msgpack cannot carry
     */
    byte[] packedHeader(String batchId, List<String> jobIds, List<byte[]> bodies) {
        List<Long> sizes = new ArrayList<>(bodies.size());
        long total = 0;
        for (byte[] body : bodies) {
            sizes.add((long) body.length);
            total += body.length;
        }
        if (total > Wire.MAX_PACKED_BYTES) {
            return null;
        }
        Map<String, Object> header = batchHeader(batchId, jobIds);
        header.put("sizes", sizes);
        byte[] raw = Msgpack.write(header);
        return raw.length > Wire.MAX_HEADER_BYTES ? null : raw;
    }

    /** The PUSH_BATCH header naming {@code jobIds}. */
    Map<String, Object> batchHeader(String batchId, List<String> jobIds) {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("id", batchId);
        header.put("queue", queue);
        header.put("ids", jobIds);
        if (headers != null && !headers.isEmpty()) {
            header.put("headers", headers);
        }
        header.putAll(fields);
        return header;
    }

    /** The PUSH header of one job, for a broker that does not take PUSH_BATCH. */
    Map<String, Object> pushHeader(String jobId) {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("id", jobId);
        header.put("queue", queue);
        if (headers != null && !headers.isEmpty()) {
            header.put("headers", headers);
        }
        header.putAll(fields);
        return header;
    }
}
