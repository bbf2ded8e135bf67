// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * One event from a PUB endpoint. {@code broker} names the broker that published it ("" when
 * that broker does not say). {@code gap} is true when this subscriber has certainly missed
 * events of that broker before this one: the topic's seq jumped within an epoch, or the broker
 * restarted (new epoch) after this subscriber had already seen events from it.
 */
public record Event(String topic, byte[] body, Map<String, Object> headers, long seq, String epoch, String broker,
                    String id, boolean gap) {
    public String text() {
        return new String(body, StandardCharsets.UTF_8);
    }
}
