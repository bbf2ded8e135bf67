// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import redis.clients.jedis.JedisPooled;

/**
 * A private redis-server subprocess for the tests: a free loopback TCP port (Jedis has no
 * unix-socket transport), no persistence, logs under target/test-logs. Never whatever runs on 6379.
 */
final class RedisServer implements AutoCloseable {
    final int port = TestSupport.freePort();
    private final Process process;
    final JedisPooled jedis;

    RedisServer(Path logDir) throws IOException, InterruptedException {
        String server = System.getenv().getOrDefault("ZEROMESH_REDIS_SERVER", "redis-server");
        ProcessBuilder pb = new ProcessBuilder(List.of(server, "--port", Integer.toString(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", logDir.toString()));
        pb.redirectErrorStream(true);
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(logDir.resolve("redis-" + port + ".log").toFile()));
        process = pb.start();
        jedis = new JedisPooled("127.0.0.1", port);
        long deadline = System.nanoTime() + TestSupport.seconds(10).toNanos();
        while (true) {
            try {
                if ("PONG".equals(jedis.ping())) {
                    return;
                }
            } catch (RuntimeException e) {
                if (!process.isAlive() || System.nanoTime() > deadline) {
                    close();
                    throw new IllegalStateException("redis-server did not answer PING within 10 s", e);
                }
            }
            Thread.sleep(20);
        }
    }

    @Override
    public void close() {
        try {
            stop();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void stop() throws InterruptedException {
        jedis.close();
        process.destroy();
        if (!process.waitFor(TestSupport.seconds(5).toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly();
            process.waitFor(5, TimeUnit.SECONDS);
        }
    }
}
