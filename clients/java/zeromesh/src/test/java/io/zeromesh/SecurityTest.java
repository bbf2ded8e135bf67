// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The Java client, worker and subscriptions against a real Python broker with CURVE on (SPEC.md
 * 14): every verb with keys of the right roles; no key, an unknown key, a wrong server key and a
 * removed key refused quickly and clearly; commands outside a key's roles forbidden, changing
 * nothing.
 */
class SecurityTest {
    private static Path root;
    private static TestKeys keys;
    private static BrokerProcess broker;
    private final List<AutoCloseable> open = new ArrayList<>();

    @BeforeAll
    static void startBroker() throws Exception {
        root = Files.createTempDirectory(TestSupport.logDir(), "security-");
        keys = new TestKeys(root.resolve("keys"));
        keys.add("producer", "producer");
        keys.add("worker", "worker");
        keys.add("subscriber", "subscriber");
        keys.add("admin", "admin");
        keys.add("narrow-worker", "worker:other.*");
        keys.stranger("stranger");
        broker = new BrokerProcess(root).withCurve(keys, "admin").start();
    }

    @AfterAll
    static void stopBroker() {
        if (broker != null) {
            broker.close();
        }
    }

    @AfterEach
    void closeAll() {
        assertTimeoutPreemptively(TestSupport.seconds(30), () -> {
            for (int i = open.size() - 1; i >= 0; i--) {
                AutoCloseable c = open.get(i);
                if (c instanceof Worker w) {
                    w.close(Duration.ofSeconds(2));
                } else {
                    c.close();
                }
            }
        });
    }

    private static Duration s(double seconds) {
        return TestSupport.seconds(seconds);
    }

    private <T extends AutoCloseable> T track(T c) {
        open.add(c);
        return c;
    }

    private Client client(String server, Path secret) {
        Client.Builder b = Client.builder().endpoint(broker.endpoint).pubEndpoint(broker.pubEndpoint);
        if (server != null) {
            b.curveServer(server).curveSecret(secret);
        }
        return track(b.build());
    }

    private Client client(String key) {
        return client(keys.brokerPublic().toString(), keys.secret(key));
    }

    private Worker worker(Path secret, String... names) {
        Worker w = track(Worker.builder().endpoint(broker.endpoint).concurrency(2)
                .curveServer(keys.brokerPublic().toString()).curveSecret(secret).build());
        for (String name : names) {
            w.handle(name, job -> job.kind() == Job.Kind.REQUEST ? ("re: " + job.text()).getBytes(UTF_8) : null);
        }
        return w;
    }

    private static long counter(Client admin, String name) {
        Object counters = admin.admin("status", Map.of(), Duration.ofSeconds(5)).get("counters");
        Object n = ((Map<?, ?>) counters).get(name);
        return n == null ? 0 : ((Number) n).longValue();
    }

    @Test
    void everyVerbWorksWithKeysOfTheRightRoles() {
        assertTimeoutPreemptively(s(60), () -> {
            Map<String, Job> jobs = new ConcurrentHashMap<>();
            Worker w = track(Worker.builder().endpoint(broker.endpoint).concurrency(2)
                    .curveServer(keys.brokerPublic().toString()).curveSecret(keys.secret("worker")).build());
            w.handle("sec.q", job -> {
                jobs.put(job.id(), job);
                return null;
            }).handle("sec.svc", job -> ("re: " + job.text()).getBytes(UTF_8)).start();
            assertTrue(w.awaitReady(s(5)), "the worker registered with its key");

            Client producer = client("producer");
            String one = producer.push("sec.q", "one".getBytes(UTF_8));
            List<String> many = producer.pushMany("sec.q", List.of("a".getBytes(UTF_8), "b".getBytes(UTF_8)));
            assertArrayEquals("re: hi".getBytes(UTF_8), producer.request("sec.svc", "hi".getBytes(UTF_8), s(5)));
            long deadline = System.nanoTime() + s(10).toNanos();
            while (jobs.size() < 3 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertEquals(3, jobs.size());
            assertTrue(jobs.containsKey(one) && jobs.keySet().containsAll(many));

            // The PUB endpoint is a CURVE server too: the subscriber key reads what the producer publishes.
            Subscription sub = track(client("subscriber").subscribe("sec."));
            Event event = null;
            for (int i = 0; i < 50 && event == null; i++) { // the slow joiner: publish until one arrives
                producer.publish("sec.news", "extra".getBytes(UTF_8));
                event = sub.next(Duration.ofMillis(200));
            }
            assertNotNull(event, "the subscriber got an event");
            assertEquals("sec.news", event.topic());

            Map<String, Object> status = client("admin").admin("status", Map.of(), s(5));
            assertTrue(status.containsKey("counters"), status.toString());
        });
    }

    /** Runs {@code call}; it must throw AuthenticationException naming the broker within 2 s. */
    private static AuthenticationException refused(Executable call, String why) {
        long start = System.nanoTime();
        AuthenticationException e = assertThrows(AuthenticationException.class, call);
        long tookMs = (System.nanoTime() - start) / 1_000_000;
        assertTrue(tookMs < s(2).toMillis(), "refused after " + tookMs + " ms");
        assertEquals("authentication refused by the broker at " + broker.endpoint + ": " + why, e.getMessage());
        assertEquals("unauthenticated", e.code());
        return e;
    }

    @Test
    void noKeyUnknownKeyAndWrongServerKeyAreRefusedQuickly() {
        assertTimeoutPreemptively(s(60), () -> {
            Client none = client(null, null);
            refused(() -> none.push("sec.q", "x".getBytes(UTF_8), null, Duration.ofSeconds(10)), Handshakes.HANDSHAKE_FAILED);
            refused(() -> none.request("sec.svc", new byte[0], Duration.ofSeconds(10)), Handshakes.HANDSHAKE_FAILED);

            Client stranger = client(keys.brokerPublic().toString(), root.resolve("keys/strangers/stranger.key_secret"));
            AuthenticationException e = refused(() -> stranger.push("sec.q", "x".getBytes(UTF_8), null,
                    Duration.ofSeconds(10)), Handshakes.KEY_NOT_ALLOWED);
            assertEquals(1, e.getUnconfirmed().size(), "the push is listed as not confirmed");
            refused(() -> stranger.pushMany("sec.q", List.of("y".getBytes(UTF_8))), Handshakes.KEY_NOT_ALLOWED);
            refused(() -> stranger.ping(Duration.ofSeconds(10)), Handshakes.KEY_NOT_ALLOWED);

            Client wrongServer = client(keys.strangerPublic("stranger").toString(), keys.secret("producer"));
            refused(() -> wrongServer.admin("status", Map.of(), Duration.ofSeconds(10)), Handshakes.HANDSHAKE_FAILED);
        });
    }

    @Test
    void aRemovedKeyIsForbiddenOnItsNextCallOrRefused() {
        assertTimeoutPreemptively(s(60), () -> {
            keys.add("leaving", "producer");
            Thread.sleep(s(1.5).toMillis()); // the broker reads its clients directory every second
            Client leaving = client("leaving");
            leaving.push("sec.gone", "before".getBytes(UTF_8));
            keys.remove("leaving");
            ZeromeshException refusal = null;
            long deadline = System.nanoTime() + s(10).toNanos();
            while (refusal == null && System.nanoTime() < deadline) {
                try {
                    leaving.push("sec.gone", "after".getBytes(UTF_8), null, Duration.ofSeconds(5));
                    Thread.sleep(100);
                } catch (ForbiddenException | AuthenticationException e) {
                    refusal = e;
                }
            }
            assertNotNull(refusal, "a removed key was refused within 10 s");
            if (refusal instanceof ForbiddenException f) {
                assertEquals("forbidden", f.code());
                assertTrue(f.getMessage().contains("leaving"), f.getMessage());
            }
        });
    }

    @Test
    void commandsOutsideTheRolesAreForbiddenAndChangeNothing() {
        assertTimeoutPreemptively(s(60), () -> {
            Client admin = client("admin");
            Client producer = client("producer");
            long before = counter(admin, "forbidden");
            ForbiddenException e = assertThrows(ForbiddenException.class,
                    () -> producer.admin("purge", Map.of("queue", "sec.q"), s(5)));
            assertEquals("forbidden", e.code());
            assertTrue(e.getMessage().startsWith("key producer may not send ADMIN"), e.getMessage());
            assertThrows(ForbiddenException.class, () -> client("worker").push("sec.q", "no".getBytes(UTF_8)));

            // A worker key publishing: nothing reaches a subscriber, and the broker counts it.
            Subscription sub = track(client("subscriber").subscribe("sec.forbidden"));
            Client workerKey = client("worker");
            for (int i = 0; i < 10; i++) {
                workerKey.publish("sec.forbidden", "nope".getBytes(UTF_8));
            }
            assertEquals(null, sub.next(s(1)), "a forbidden publish reaches nobody");
            long after = before;
            long deadline = System.nanoTime() + s(5).toNanos();
            while (after < before + 12 && System.nanoTime() < deadline) {
                after = counter(admin, "forbidden");
            }
            assertEquals(before + 12, after, "one purge, one push and ten publishes counted as forbidden");
        });
    }

    @Test
    void withSeveralBrokersARefusingOneCountsAsDownAndTheErrorComesWhenNoneLetsUsIn() {
        assertTimeoutPreemptively(s(90), () -> {
            // A second broker with the same key pair that knows only the admin key.
            Path clients = Files.createDirectories(root.resolve("second-clients"));
            Files.copy(keys.clients().resolve("admin.key"), clients.resolve("admin.key"));
            open.add(new BrokerProcess(root).withCurve(keys, clients, "admin").start());
            BrokerProcess second = (BrokerProcess) open.get(open.size() - 1);
            String list = second.endpoint + "," + broker.endpoint;
            String server = keys.brokerPublic().toString();
            for (int i = 0; i < 3; i++) { // whichever broker it starts on, it ends on the one that lets it in
                Client producer = track(Client.builder().endpoint(list).curveServer(server)
                        .curveSecret(keys.secret("producer")).build());
                producer.push("sec.several", "x".getBytes(UTF_8), null, s(10));
                assertEquals(broker.endpoint, producer.currentBroker());
            }
            Worker w = track(Worker.builder().endpoint(list).curveServer(server).curveSecret(keys.secret("worker"))
                    .build());
            w.handle("sec.several.svc", job -> job.body()).start();
            assertTrue(w.awaitReady(s(5)), "the broker that knows the key registered the worker");
            assertArrayEquals("hi".getBytes(UTF_8), client("producer").request("sec.several.svc", "hi".getBytes(UTF_8), s(5)));

            Client stranger = track(Client.builder().endpoint(list).curveServer(server)
                    .curveSecret(root.resolve("keys/strangers/stranger.key_secret")).build());
            long start = System.nanoTime();
            AuthenticationException e = assertThrows(AuthenticationException.class,
                    () -> stranger.push("sec.several", "x".getBytes(UTF_8), null, Duration.ofSeconds(20)));
            long tookMs = (System.nanoTime() - start) / 1_000_000;
            assertTrue(e.getMessage().startsWith("authentication refused by the broker at "), e.getMessage());
            assertTrue(tookMs < s(5).toMillis(), "refused by both after " + tookMs + " ms");
        });
    }

    @Test
    void aWorkerEveryBrokerRefusesThrowsFromRun() {
        assertTimeoutPreemptively(s(60), () -> {
            Worker w = worker(root.resolve("keys/strangers/stranger.key_secret"), "sec.q");
            long start = System.nanoTime();
            AuthenticationException e = assertThrows(AuthenticationException.class, w::run);
            long tookMs = (System.nanoTime() - start) / 1_000_000;
            assertEquals("authentication refused by the broker at " + broker.endpoint + ": "
                    + Handshakes.KEY_NOT_ALLOWED, e.getMessage());
            assertTrue(tookMs < s(4).toMillis(), "run() threw after " + tookMs + " ms");
        });
    }

    @Test
    void aWorkerWhoseReadyIsForbiddenThrowsFromRun() {
        assertTimeoutPreemptively(s(60), () -> {
            Worker w = worker(keys.secret("narrow-worker"), "sec.q");
            ForbiddenException e = assertThrows(ForbiddenException.class, w::run);
            assertTrue(e.getMessage().startsWith("key narrow-worker may not send READY"), e.getMessage());
            Worker allowed = worker(keys.secret("narrow-worker"), "other.q");
            allowed.start();
            assertTrue(allowed.awaitReady(s(5)), "names within the grant are served");
        });
    }

    @Test
    void aSubscriberWithoutTheRoleThrowsFromNext() {
        assertTimeoutPreemptively(s(60), () -> {
            Subscription sub = track(client("producer").subscribe("sec."));
            long start = System.nanoTime();
            AuthenticationException e = assertThrows(AuthenticationException.class, () -> sub.next(s(10)));
            long tookMs = (System.nanoTime() - start) / 1_000_000;
            assertTrue(tookMs < s(2).toMillis(), "next() threw after " + tookMs + " ms");
            assertEquals("authentication refused by the broker at " + broker.pubEndpoint + ": "
                    + Handshakes.KEY_NOT_ALLOWED, e.getMessage());
            assertThrows(AuthenticationException.class, () -> sub.next(Duration.ofMillis(100)), "while it stays refused");
        });
    }
}
