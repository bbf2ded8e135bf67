// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import redis.clients.jedis.Jedis;

/**
 * Real Redis under Sentinel for the tests: a primary, one replica (--replicaof) and three
 * {@code redis-server --sentinel} processes, all on free loopback ports, configs and logs in a
 * directory of their own. Ready when every sentinel knows the replica and the two other sentinels
 * (without them no quorum can elect a leader, and a failover would never start).
 */
final class SentinelGroup implements AutoCloseable {
    static final String SERVICE = "zm";
    final int primaryPort = TestSupport.freePort();
    final int replicaPort = TestSupport.freePort();
    final List<Integer> sentinelPorts = List.of(TestSupport.freePort(), TestSupport.freePort(), TestSupport.freePort());
    private final Path dir;
    private final List<Process> processes = new ArrayList<>();
    private Process primary;

    SentinelGroup() throws IOException, InterruptedException {
        dir = Files.createTempDirectory(TestSupport.logDir(), "sentinel-");
        try {
            primary = redis("primary", List.of("--port", Integer.toString(primaryPort)));
            redis("replica", List.of("--port", Integer.toString(replicaPort), "--replicaof", "127.0.0.1",
                    Integer.toString(primaryPort)));
            await("the replica is in sync", 10, () -> info(replicaPort, "master_link_status:up"));
            for (int port : sentinelPorts) {
                Path conf = dir.resolve("sentinel-" + port + ".conf");
                Files.writeString(conf, String.join("\n", "port " + port, "bind 127.0.0.1", "dir " + dir,
                        "sentinel monitor " + SERVICE + " 127.0.0.1 " + primaryPort + " 2",
                        "sentinel down-after-milliseconds " + SERVICE + " 1000",
                        "sentinel failover-timeout " + SERVICE + " 3000", ""));
                start("sentinel-" + port, List.of(server(), conf.toString(), "--sentinel"));
            }
            for (int port : sentinelPorts) {
                await("sentinel " + port + " knows the replica and the other sentinels", 30, () -> {
                    try (Jedis s = new Jedis("127.0.0.1", port)) {
                        Map<String, String> m = s.sentinelMaster(SERVICE);
                        return "1".equals(m.get("num-slaves")) && "2".equals(m.get("num-other-sentinels"));
                    } catch (RuntimeException e) {
                        return false;
                    }
                });
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            close();
            throw e;
        }
    }

    /** The redis+sentinel:// URL of the three sentinels. */
    String url() {
        StringBuilder hosts = new StringBuilder();
        for (int port : sentinelPorts) {
            hosts.append(hosts.isEmpty() ? "" : ",").append("127.0.0.1:").append(port);
        }
        return "redis+sentinel://" + hosts + "/" + SERVICE;
    }

    /** SIGKILL the primary: no shutdown, no last replication. */
    void killPrimary() throws InterruptedException {
        primary.destroyForcibly();
        primary.waitFor(5, TimeUnit.SECONDS);
    }

    /** True once the replica has been promoted (ROLE master). */
    boolean replicaPromoted() {
        return info(replicaPort, "role:master");
    }

    static void await(String what, double seconds, BooleanSupplier done) throws InterruptedException {
        long deadline = System.nanoTime() + TestSupport.seconds(seconds).toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("not within " + seconds + " s: " + what);
            }
            Thread.sleep(50);
        }
    }

    private static boolean info(int port, String line) {
        try (Jedis j = new Jedis("127.0.0.1", port)) {
            return j.info("replication").contains(line);
        } catch (RuntimeException e) {
            return false;
        }
    }

    private static String server() {
        return System.getenv().getOrDefault("ZEROMESH_REDIS_SERVER", "redis-server");
    }

    private Process redis(String name, List<String> args) throws IOException {
        List<String> command = new ArrayList<>(List.of(server(), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                "no", "--dir", dir.toString()));
        command.addAll(args);
        return start(name, command);
    }

    private Process start(String name, List<String> command) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve(name + ".log").toFile()));
        Process p = pb.start();
        processes.add(p);
        return p;
    }

    @Override
    public void close() {
        for (Process p : processes) {
            p.destroy();
        }
        for (Process p : processes) {
            try {
                if (!p.waitFor(TestSupport.seconds(5).toMillis(), TimeUnit.MILLISECONDS)) {
                    p.destroyForcibly();
                    p.waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
