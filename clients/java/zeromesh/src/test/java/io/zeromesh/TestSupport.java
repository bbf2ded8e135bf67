// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;

/** Paths, free ports and the time factor shared by the tests. */
final class TestSupport {
    private TestSupport() {}

    /** Scale every wait by this on slow machines (-Dzeromesh.test.timeFactor or ZEROMESH_TEST_TIME_FACTOR). */
    static final double TIME_FACTOR = Double.parseDouble(System.getProperty("zeromesh.test.timeFactor",
            System.getenv().getOrDefault("ZEROMESH_TEST_TIME_FACTOR", "1")));

    static Duration scaled(Duration d) {
        return Duration.ofMillis((long) (d.toMillis() * TIME_FACTOR));
    }

    static Duration seconds(double s) {
        return scaled(Duration.ofMillis((long) (s * 1000)));
    }

    static Path repo() {
        return Path.of(System.getProperty("zeromesh.repo", "../../..")).toAbsolutePath().normalize();
    }

    static Path vectors() {
        return Path.of(System.getProperty("zeromesh.vectors", repo().resolve("protocol/vectors").toString()))
                .toAbsolutePath().normalize();
    }

    /** Logs of the processes tests start (brokers, redis-server): kept under target/ for a look after a failure. */
    static Path logDir() {
        Path dir = Path.of("target", "test-logs").toAbsolutePath();
        try {
            java.nio.file.Files.createDirectories(dir);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return dir;
    }

    static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
