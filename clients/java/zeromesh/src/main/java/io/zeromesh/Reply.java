// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/** A reply body with the headers the handler attached. */
public record Reply(byte[] body, Map<String, Object> headers) {
    public String text() {
        return new String(body, StandardCharsets.UTF_8);
    }
}
