// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.time.Duration;

/**
 * A short program, run by CloseDeliversTest in its own JVM: publish N events and exit at once.
 * Usage: PublishAndExit ENDPOINT TOPIC N [LINGER_MS]
 */
public final class PublishAndExit {
    private PublishAndExit() {}

    public static void main(String[] args) {
        Client.Builder builder = Client.builder().endpoint(args[0]);
        if (args.length > 3) {
            builder.linger(Duration.ofMillis(Long.parseLong(args[3])));
        }
        int n = Integer.parseInt(args[2]);
        try (Client client = builder.build()) {
            for (int i = 0; i < n; i++) {
                client.publish(args[1], Integer.toString(i).getBytes(UTF_8));
            }
        }
    }
}
