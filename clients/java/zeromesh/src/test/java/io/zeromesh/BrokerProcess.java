// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real `python -m zeromesh broker` subprocess on free loopback ports, logging to a file.
 * The Python interpreter is ZEROMESH_PYTHON, else the repository's .venv.
 */
final class BrokerProcess implements AutoCloseable {
    final int port;
    final int pubPort;
    final String endpoint;
    final String pubEndpoint;
    private final Path log;
    private final List<String> extraArgs = new java.util.ArrayList<>();
    private final java.util.Map<String, String> env = new java.util.HashMap<>(java.util.Map.of("ZEROMESH_REDIS_URL", "none"));
    private Process process;
    /** The readiness probe's CURVE settings (broker public certificate, a client secret), for a secured broker. */
    private String probeServer;
    private Path probeSecret;

    BrokerProcess(Path dir) {
        this(dir, TestSupport.freePort(), TestSupport.freePort());
    }

    BrokerProcess(Path dir, int port, int pubPort) {
        this.port = port;
        this.pubPort = pubPort;
        this.endpoint = "tcp://127.0.0.1:" + port;
        this.pubEndpoint = "tcp://127.0.0.1:" + pubPort;
        this.log = dir.resolve("broker-" + port + ".log");
    }

    static String python() {
        String python = System.getenv("ZEROMESH_PYTHON");
        return python != null && !python.isEmpty() ? python : TestSupport.repo().resolve(".venv/bin/python").toString();
    }

    /** More arguments of `zeromesh broker` (e.g. --config FILE), for the next start. */
    BrokerProcess withArgs(String... args) {
        extraArgs.addAll(List.of(args));
        return this;
    }

    /** An environment variable of the broker process (ZEROMESH_REDIS_URL is "none" unless set here). */
    BrokerProcess withEnv(String name, String value) {
        env.put(name, value);
        return this;
    }

    /**
     * A secured broker: {@code --curve-secret} and {@code --curve-clients} of {@code keys}, and its
     * readiness probe connects with the key {@code probeKey} (any role: a ping needs only a known key).
     */
    BrokerProcess withCurve(TestKeys keys, String probeKey) {
        return withCurve(keys, keys.clients(), probeKey);
    }

    /** {@link #withCurve(TestKeys, String)} with another clients directory (it must hold {@code probeKey}'s). */
    BrokerProcess withCurve(TestKeys keys, Path clients, String probeKey) {
        withArgs("--curve-secret", keys.brokerSecret().toString(), "--curve-clients", clients.toString());
        probeServer = keys.brokerPublic().toString();
        probeSecret = keys.secret(probeKey);
        return this;
    }

    /** The broker's process id (for kill -STOP / -CONT). */
    long pid() {
        return process.pid();
    }

    /** Start the broker and wait (bounded) until it answers a ping. */
    BrokerProcess start() throws IOException {
        List<String> command = new java.util.ArrayList<>(List.of(python(), "-m", "zeromesh", "--log-level", "DEBUG",
                "broker", "--endpoint", endpoint, "--pub", pubEndpoint));
        command.addAll(extraArgs);
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.directory(TestSupport.repo().toFile());
        // In-memory queues only unless a test names a Redis: most are about the wire, and must not share one.
        pb.environment().putAll(env);
        pb.redirectErrorStream(true);
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        process = pb.start();
        long deadline = System.nanoTime() + TestSupport.seconds(15).toNanos();
        Client.Builder probeBuilder = Client.builder().endpoint(endpoint);
        if (probeServer != null) {
            probeBuilder.curveServer(probeServer).curveSecret(probeSecret);
        }
        try (Client probe = probeBuilder.build()) {
            while (true) {
                if (!process.isAlive()) {
                    throw new IllegalStateException("broker exited with " + process.exitValue() + ":\n" + logText());
                }
                try {
                    probe.ping(Duration.ofMillis(300));
                    return this;
                } catch (ZeromeshTimeoutException | UnreachableException e) {
                    if (System.nanoTime() > deadline) {
                        throw new IllegalStateException("broker did not answer a ping within 15 s:\n" + logText());
                    }
                }
            }
        }
    }

    String logText() {
        try {
            return Files.exists(log) ? Files.readString(log) : "(no log)";
        } catch (IOException e) {
            return "(log unreadable: " + e + ")";
        }
    }

    /** SIGTERM, then wait with a deadline; SIGKILL if it is still there. */
    @Override
    public void close() {
        try {
            stop();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void stop() throws InterruptedException {
        if (process == null) {
            return;
        }
        process.destroy();
        if (!process.waitFor(TestSupport.seconds(10).toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly();
            process.waitFor(5, TimeUnit.SECONDS);
        }
    }

    /** SIGKILL at once: a crash, for restart tests. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(5, TimeUnit.SECONDS);
    }

    static boolean pythonAvailable() {
        return new File(python()).canExecute() || !python().contains(File.separator);
    }
}
