// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * An unreachable broker is reported within the connect timeout (UnreachableException), while a
 * broker that is there but slow keeps the caller's whole deadline; pushMany's error lists the jobs
 * not confirmed. Against real broker processes, or a loopback port where nothing listens.
 */
class ClientReachTest {
    private static Duration s(double seconds) {
        return TestSupport.seconds(seconds);
    }

    private static List<byte[]> bodies(String prefix, int n) {
        List<byte[]> bodies = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            bodies.add((prefix + i).getBytes(UTF_8));
        }
        return bodies;
    }

    /** Runs {@code call}, which must throw UnreachableException; returns it with the time it took in ms. */
    private static UnreachableException unreachable(String endpoint, Executable call, long[] tookMs) {
        long start = System.nanoTime();
        UnreachableException e = assertThrows(UnreachableException.class, call);
        tookMs[0] = (System.nanoTime() - start) / 1_000_000;
        assertTrue(e.getMessage().startsWith("cannot reach the broker at " + endpoint), e.getMessage());
        assertEquals("unreachable", e.code());
        return e;
    }

    @Test
    void everyCallFailsWithinAboutASecondWhenNothingListens() {
        assertTimeoutPreemptively(s(60), () -> {
            String endpoint = "tcp://127.0.0.1:" + TestSupport.freePort();
            long[] took = new long[1];
            long bound = s(2.5).toMillis();
            try (Client client = Client.builder().endpoint(endpoint).build()) {
                UnreachableException e = unreachable(endpoint, () -> client.push("q", "x".getBytes(UTF_8)), took);
                assertTrue(e.getMessage().contains("(1 job(s) not confirmed)"), e.getMessage());
                assertEquals(1, e.getUnconfirmed().size());
                assertArrayEquals("x".getBytes(UTF_8), e.getUnconfirmed().get(0).body());
                assertTrue(took[0] >= 900 && took[0] < bound, "push failed after " + took[0] + " ms");

                List<byte[]> bodies = bodies("job ", 250);
                e = unreachable(endpoint, () -> client.pushMany("q", bodies), took);
                assertTrue(e.getMessage().contains("(250 job(s) not confirmed)"), e.getMessage());
                assertEquals(List.of(), e.getAccepted());
                assertEquals(250, e.getUnconfirmed().size());
                for (int i = 0; i < 250; i++) {
                    assertArrayEquals(bodies.get(i), e.getUnconfirmed().get(i).body(), "in the order given");
                }
                assertTrue(took[0] < bound, "pushMany failed after " + took[0] + " ms");

                unreachable(endpoint, () -> client.request("svc", new byte[0], Duration.ofSeconds(5)), took);
                assertTrue(took[0] >= 900 && took[0] < bound, "request failed after " + took[0] + " ms");
                unreachable(endpoint, () -> client.admin("status", null, Duration.ofSeconds(5)), took);
                assertTrue(took[0] < bound, "admin status failed after " + took[0] + " ms");
                unreachable(endpoint, () -> client.ping(Duration.ofSeconds(5)), took);
                assertTrue(took[0] < bound, "ping failed after " + took[0] + " ms");
            }
            try (Client patient = Client.builder().endpoint(endpoint).connectTimeout(Duration.ofMillis(2500)).build()) {
                unreachable(endpoint, () -> patient.ping(Duration.ofSeconds(10)), took);
                assertTrue(took[0] >= 2400 && took[0] < 2500 + bound, "connectTimeout 2.5 s: after " + took[0] + " ms");
            }
        });
    }

    /** A connection that was live gets the reconnect grace (5 s: a restart takes a second or two). */
    @Test
    void aBrokerThatDiesIsNoticedAfterTheReconnectGrace() {
        assertTimeoutPreemptively(s(60), () -> {
            BrokerProcess broker = new BrokerProcess(TestSupport.logDir()).start();
            try (Client client = Client.builder().endpoint(broker.endpoint).build()) {
                client.ping(Duration.ofSeconds(5));
                broker.kill();
                long[] took = new long[1];
                unreachable(broker.endpoint, () -> client.request("svc", new byte[0], Duration.ofSeconds(10)), took);
                assertTrue(took[0] >= 4900 && took[0] < 5000 + s(2.5).toMillis(), "request failed after " + took[0] + " ms");
            } finally {
                broker.close();
            }
        });
    }

    @Test
    void aLiveButSlowBrokerKeepsTheWholeDeadline() {
        assertTimeoutPreemptively(s(90), () -> {
            BrokerProcess broker = new BrokerProcess(TestSupport.logDir()).start();
            try (Client client = Client.builder().endpoint(broker.endpoint).build();
                    Worker worker = Worker.builder().endpoint(broker.endpoint).concurrency(1).build()) {
                worker.handle("java.sleepy", job -> {
                    Thread.sleep(2500);
                    return "late".getBytes(UTF_8);
                }).start();
                assertTrue(worker.awaitReady(s(5)));
                long start = System.nanoTime();
                assertArrayEquals("late".getBytes(UTF_8), client.request("java.sleepy", new byte[0], Duration.ofSeconds(6)),
                        "a slow handler behind a live broker answers");
                assertTrue(System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(2400));

                // A stopped broker process: the kernel keeps its connections open, so it is there, just slow.
                signal("STOP", broker.pid());
                try {
                    for (Executable call : List.<Executable>of(
                            () -> client.ping(Duration.ofMillis(2500)),
                            () -> client.admin("status", null, Duration.ofMillis(2500)),
                            () -> client.push("q", new byte[0], null, Duration.ofMillis(2500)))) {
                        start = System.nanoTime();
                        assertThrows(ZeromeshTimeoutException.class, call);
                        long tookMs = (System.nanoTime() - start) / 1_000_000;
                        assertTrue(tookMs >= 2400, "a live broker keeps the whole deadline: failed after " + tookMs + " ms");
                    }
                } finally {
                    signal("CONT", broker.pid());
                }
            } finally {
                broker.close();
            }
        });
    }

    private static void signal(String name, long pid) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(pid)).inheritIO().start();
        assertTrue(kill.waitFor(5, TimeUnit.SECONDS) && kill.exitValue() == 0, "kill -" + name + " " + pid);
    }

    @Test
    void pushManyRefusedPartlyListsTheUnconfirmedJobsInOrder() {
        assertTimeoutPreemptively(s(60), () -> {
            Path config = Files.createTempFile(TestSupport.logDir(), "small-queue", ".toml");
            Files.writeString(config, "[queues.\"java.small\"]\nmax_depth = 150\n");
            BrokerProcess broker = new BrokerProcess(TestSupport.logDir()).withArgs("--config", config.toString()).start();
            try (Client client = Client.builder().endpoint(broker.endpoint).build()) {
                List<byte[]> bodies = bodies("small ", 300);
                QueueFullException e = assertThrows(QueueFullException.class,
                        () -> client.pushMany("java.small", bodies, null, Duration.ofSeconds(10)));
                List<UnconfirmedJob> unconfirmed = e.getUnconfirmed();
                assertEquals(150, e.getAccepted().size(), "the queue took 150");
                assertEquals(150, unconfirmed.size(), "the rest is listed");
                for (int i = 0; i < 150; i++) {
                    assertArrayEquals(bodies.get(150 + i), unconfirmed.get(i).body(), "in the order given");
                    assertTrue(!e.getAccepted().contains(unconfirmed.get(i).id()));
                }
                assertEquals(150L, ((Number) ((java.util.Map<?, ?>) ((java.util.Map<?, ?>) client.admin("status", null,
                        Duration.ofSeconds(5)).get("queues")).get("java.small")).get("depth")).longValue());
            } finally {
                broker.close();
            }
        });
    }
}
