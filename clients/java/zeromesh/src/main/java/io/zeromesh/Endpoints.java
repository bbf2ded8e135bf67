// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.ArrayList;
import java.util.List;

/**
 * Endpoint lists (ZEROMESH_BROKER, ZEROMESH_PUB, the builders' endpoints): one endpoint, or
 * several separated by commas, {@code tcp://h1:5555,tcp://h2:5555}. The one place that parses
 * and checks them, so every part of the client reads a list the same way.
 */
final class Endpoints {
    private Endpoints() {}

    /**
     * The endpoints of {@code list} in order; whitespace around commas is ignored.
     *
     * @throws IllegalArgumentException an item is empty ("empty endpoint in LIST")
     */
    static List<String> parse(String list) {
        List<String> endpoints = new ArrayList<>();
        for (String item : list.split(",", -1)) {
            String endpoint = item.strip();
            if (endpoint.isEmpty()) {
                throw new IllegalArgumentException("empty endpoint in '" + list + "'");
            }
            endpoints.add(endpoint);
        }
        return List.copyOf(endpoints);
    }
}
