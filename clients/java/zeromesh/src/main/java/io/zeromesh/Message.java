// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.List;
import java.util.Map;

/**
 * A decoded broker-endpoint message. {@code header} is the first (or only) header;
 * {@code items} holds every (header, body) pair of an item command and is empty otherwise;
 * {@code bodies} holds the bodies of a batch or packed command, one per id in the header's "ids"
 * (for a packed command, cut from its one body frame by "sizes"), and is empty otherwise.
 */
record Message(int command, Map<String, Object> header, List<Item> items, List<byte[]> bodies) {
    /** An item or control message (no batch bodies). */
    Message(int command, Map<String, Object> header, List<Item> items) {
        this(command, header, items, List.of());
    }

    String name() {
        return Wire.COMMAND_NAMES.get(command);
    }
}
