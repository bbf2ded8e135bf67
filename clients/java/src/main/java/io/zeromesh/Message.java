// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.List;
import java.util.Map;

/**
 * A decoded broker-endpoint message. {@code header} is the first (or only) header;
 * {@code items} holds every (header, body) pair of an item command and is empty for control commands.
 */
public record Message(int command, Map<String, Object> header, List<Item> items) {
    public String name() {
        return Wire.COMMAND_NAMES.get(command);
    }
}
