// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * A broker SIGKILLed and started again on the same port while a Java worker holds jobs: the
 * worker leaves its old connection with DISCONNECT, so the new broker registers it once, and no
 * job runs again with an extra attempt because a stale registration soaked it up.
 */
class WorkerRestartTest {
    private static final String LABEL = "java-restart";

    private static Duration s(double seconds) {
        return TestSupport.seconds(seconds);
    }

    /** How many registrations of the test worker the broker lists now. */
    private static int registrations(Client client) {
        int n = 0;
        for (Object w : (List<?>) client.admin("status", null, Duration.ofSeconds(5)).get("workers")) {
            if (LABEL.equals(((Map<?, ?>) w).get("label"))) {
                n++;
            }
        }
        return n;
    }

    @Test
    void aRestartedBrokerRegistersTheWorkerOnceAndNoJobGetsAnExtraAttempt() {
        assertTimeoutPreemptively(s(90), () -> {
            BrokerProcess first = new BrokerProcess(TestSupport.logDir()).start();
            BrokerProcess second = new BrokerProcess(TestSupport.logDir(), first.port, first.pubPort);
            Map<String, List<Long>> attempts = new ConcurrentHashMap<>();
            AtomicInteger running = new AtomicInteger();
            try (Worker worker = Worker.builder().endpoint(first.endpoint).concurrency(2).label(LABEL).build();
                    Client client = Client.builder().endpoint(first.endpoint).build()) {
                worker.handle("java.restart", job -> {
                    running.incrementAndGet();
                    try {
                        attempts.computeIfAbsent(job.text(), k -> java.util.Collections.synchronizedList(new ArrayList<>()))
                                .add(job.attempt());
                        Thread.sleep(job.text().startsWith("before") ? 400 : 50);
                    } finally {
                        running.decrementAndGet();
                    }
                    return null;
                }).start();
                assertTrue(worker.awaitReady(s(5)));
                for (int i = 0; i < 20; i++) {
                    client.push("java.restart", ("before " + i).getBytes(UTF_8));
                }
                long deadline = System.nanoTime() + s(5).toNanos();
                while (running.get() == 0 && System.nanoTime() < deadline) {
                    Thread.sleep(10);
                }
                assertTrue(running.get() > 0, "the worker holds jobs");
                first.kill();
                second.start(); // same ports: the worker's and the client's sockets reconnect to it

                // Jobs waiting while the worker registers again: a stale registration would take some.
                List<byte[]> bodies = new ArrayList<>();
                for (int i = 0; i < 60; i++) {
                    bodies.add(("after " + i).getBytes(UTF_8));
                }
                client.pushMany("java.restart", bodies, null, Duration.ofSeconds(10));

                deadline = System.nanoTime() + s(15).toNanos();
                while (registrations(client) == 0 && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                }
                long registered = System.nanoTime();
                // Settled: from here on one registration, never two (a stale one stays ~3 s, until lost).
                Thread.sleep(s(0.5).toMillis());
                List<Integer> seen = new ArrayList<>();
                for (int i = 0; i < 12; i++) {
                    seen.add(registrations(client));
                    Thread.sleep(250);
                }
                assertTrue(seen.stream().allMatch(n -> n == 1), "registrations of the worker over 3 s: " + seen
                        + "\n" + second.logText());

                deadline = System.nanoTime() + s(20).toNanos();
                while (System.nanoTime() < deadline
                        && bodies.stream().anyMatch(b -> !attempts.containsKey(new String(b, UTF_8)))) {
                    Thread.sleep(50);
                }
                for (byte[] body : bodies) {
                    String text = new String(body, UTF_8);
                    assertEquals(List.of(1L), attempts.get(text), text + ": handled once, as attempt 1");
                }
                // A stale registration is declared lost ~4 s after its last message, its jobs then
                // handed out again: past that, the broker must have lost no worker.
                Thread.sleep(Math.max(0, s(5).toMillis() - (System.nanoTime() - registered) / 1_000_000));
                Map<?, ?> counters = (Map<?, ?>) client.admin("status", null, Duration.ofSeconds(5)).get("counters");
                Object lost = counters.get("workers_lost");
                assertEquals(0L, lost == null ? 0L : ((Number) lost).longValue(),
                        "workers the restarted broker declared lost: " + counters);
            } finally {
                second.close();
                first.close();
            }
        });
    }
}
