// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Jobs for later and for once, the queue controls and a handler's own retry delay, through the
 * Java client and worker against a real broker with a private Redis (scheduled jobs and unique
 * keys live there). Each test has queues of its own, so none sees another's jobs.
 */
class LaterJobsTest {
    /** How late after its due time a scheduled job may arrive here (the broker aims at 100 ms). */
    private static final Duration LATE_BOUND = TestSupport.seconds(1.5);

    static RedisServer redis;
    static BrokerProcess broker;

    private Client client;
    private final List<Worker> workers = new ArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        redis = new RedisServer(TestSupport.logDir());
        Path config = Files.createTempFile(TestSupport.logDir(), "later-", ".toml");
        // No backoff on java.retry: a retry_in_ms the broker ignored would show as an early attempt.
        Files.writeString(config, "[queues.\"java.retry\"]\nretry_base_s = 0.0\n\n[[schedules]]\n"
                + "name = \"java-yearly\"\ncron = \"0 8 25 12 *\"\ntimezone = \"Europe/Paris\"\n"
                + "queue = \"java.yearly\"\nbody = \"card\"\n");
        broker = new BrokerProcess(TestSupport.logDir())
                .withEnv("ZEROMESH_REDIS_URL", "redis://127.0.0.1:" + redis.port + "/0")
                .withArgs("--config", config.toString()).start();
    }

    @AfterAll
    static void stop() {
        if (broker != null) {
            broker.close();
        }
        if (redis != null) {
            redis.close();
        }
    }

    @BeforeEach
    void connect() {
        client = Client.builder().endpoint(broker.endpoint).build();
    }

    @AfterEach
    void disconnect() {
        assertTimeoutPreemptively(s(20), () -> {
            for (Worker w : workers) {
                w.close(Duration.ofSeconds(2));
            }
            client.close();
        });
    }

    private static Duration s(double seconds) {
        return TestSupport.seconds(seconds);
    }

    /** A worker of {@code queue} that notes when (ms since the epoch) each job arrived, by id. */
    private Map<String, Long> arrivals(String queue) throws InterruptedException {
        Map<String, Long> seen = new ConcurrentHashMap<>();
        Worker w = Worker.builder().endpoint(broker.endpoint).concurrency(2).label("java-later").build();
        workers.add(w);
        w.handle(queue, job -> {
            seen.put(job.id(), System.currentTimeMillis());
            return null;
        }).start();
        assertTrue(w.awaitReady(s(5)), "the broker answered READY");
        return seen;
    }

    private static void waitFor(BooleanSupplier condition, Duration within, String what) throws InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within " + within.toMillis() + " ms: " + what);
            }
            Thread.sleep(20);
        }
    }

    private static byte[] bytes(String text) {
        return text.getBytes(UTF_8);
    }

    @Test
    void delayAtAndPushManyScheduleJobsThatArriveNotBeforeTheirTime() {
        assertTimeoutPreemptively(s(30), () -> {
            Map<String, Long> arrived = arrivals("java.later");
            long pushed = System.currentTimeMillis();
            String later = client.push("java.later", bytes("in a second"),
                    PushOptions.builder().delay(Duration.ofSeconds(1)).build());
            OffsetDateTime at = OffsetDateTime.now(ZoneOffset.ofHours(-5)).plusNanos(1_500_000_000L);
            String atId = client.push("java.later", bytes("at a time"), PushOptions.builder().at(at).build());
            List<String> many = client.pushMany("java.later", List.of(bytes("a"), bytes("b"), bytes("c")),
                    PushOptions.builder().delay(Duration.ofSeconds(1)).build());
            long confirmed = System.currentTimeMillis(); // each delay counted from a moment before this

            Set<String> scheduled = new HashSet<>();
            client.scheduled("java.later").forEach(j -> scheduled.add(j.id()));
            Set<String> all = new HashSet<>(many);
            all.add(later);
            all.add(atId);
            assertEquals(all, scheduled, "every job waits in the schedule");
            ScheduledJob first = client.scheduled("java.later", 1).get(0);
            assertTrue(first.due().toEpochMilli() >= pushed + 1000, "due a second after the push: " + first);

            waitFor(() -> arrived.size() == 5, s(10), "every scheduled job arrives");
            long atMs = at.toInstant().toEpochMilli();
            assertTrue(arrived.get(later) >= pushed + 1000, "not before its delay");
            assertTrue(arrived.get(atId) >= atMs, "not before its instant");
            assertTrue(arrived.get(atId) <= atMs + LATE_BOUND.toMillis(), "at most the bound after its instant");
            for (String id : many) {
                assertTrue(arrived.get(id) >= pushed + 1000, "a job of pushMany, not before the delay");
            }
            for (String id : many) {
                assertTrue(arrived.get(id) <= confirmed + 1000 + LATE_BOUND.toMillis(), "at most the bound after");
            }
            assertTrue(arrived.get(later) <= confirmed + 1000 + LATE_BOUND.toMillis(), "at most the bound after");
        });
    }

    @Test
    void badOptionsAreRefusedBeforeAnythingIsSent() {
        assertTimeoutPreemptively(s(20), () -> {
            assertThrows(IllegalArgumentException.class, () -> PushOptions.builder().delay(Duration.ofSeconds(-1)));
            assertThrows(IllegalArgumentException.class,
                    () -> PushOptions.builder().delay(Duration.ofSeconds(1)).at(Instant.now()).build());
            assertThrows(IllegalArgumentException.class,
                    () -> PushOptions.builder().uniqueTtl(Duration.ofSeconds(5)).build());
            assertThrows(IllegalArgumentException.class, () -> PushOptions.builder().uniqueKey(""));
            assertThrows(IllegalArgumentException.class, () -> PushOptions.builder().uniqueTtl(Duration.ZERO));
            assertThrows(IllegalArgumentException.class, () -> client.pushMany("java.bad", List.of(bytes("x")),
                    PushOptions.builder().uniqueKey("k").build()));
            assertThrows(IllegalArgumentException.class, () -> client.scheduled("java.bad", 0));
            @SuppressWarnings("unchecked")
            Map<String, Object> queues = (Map<String, Object>) client.admin("status", Map.of(), s(5)).get("queues");
            assertFalse(queues.containsKey("java.bad"), "nothing reached the broker");
        });
    }

    @Test
    void aUniquePushReturnsTheHolderAndTheKeyFreesWhenTheJobIsDone() {
        assertTimeoutPreemptively(s(30), () -> {
            PushOptions once = PushOptions.builder().uniqueKey("java:card:9").build();
            String first = client.push("java.unique", bytes("one"), once);
            String again = client.push("java.unique", bytes("two"), once);
            assertEquals(first, again, "the second push names the job that holds the key");
            Map<String, Long> arrived = arrivals("java.unique");
            waitFor(() -> arrived.containsKey(first), s(5), "the first job arrives");
            Thread.sleep(s(0.5).toMillis());
            assertEquals(Set.of(first), arrived.keySet(), "nothing was queued twice");

            // The ACK frees the key once the broker has settled it: a push soon after queues anew.
            long deadline = System.nanoTime() + s(5).toNanos();
            String next = first;
            while (next.equals(first) && System.nanoTime() < deadline) {
                next = client.push("java.unique", bytes("three"), once);
                Thread.sleep(50);
            }
            assertNotEquals(first, next, "the key is free once the job is done");
            String freed = next;
            waitFor(() -> arrived.containsKey(freed), s(5), "the job pushed after the first was done arrives");
        });
    }

    @Test
    void aUniqueKeyWithATtlIsHeldThatLongWhateverTheJob() {
        assertTimeoutPreemptively(s(20), () -> {
            PushOptions held = PushOptions.builder().uniqueKey("java:ttl").uniqueTtl(Duration.ofSeconds(1)).build();
            String first = client.push("java.ttl", bytes("one"), held);
            assertEquals(first, client.push("java.ttl", bytes("two"), held), "held within its TTL");
            Thread.sleep(1200); // the TTL ran from before the first confirm
            assertNotEquals(first, client.push("java.ttl", bytes("three"), held), "free after its TTL");
            assertEquals(2, client.purgeQueue("java.ttl"), "two jobs were queued, never a duplicate");
        });
    }

    @Test
    void pauseHoldsResumeLetsGoAndPurgeQueueCounts() {
        assertTimeoutPreemptively(s(30), () -> {
            Map<String, Long> arrived = arrivals("java.paused");
            client.pause("java.paused");
            List<String> purged = client.pushMany("java.paused", List.of(bytes("1"), bytes("2"), bytes("3")));
            List<String> held = client.pushMany("java.paused", List.of(bytes("4"), bytes("5")));
            Thread.sleep(s(0.7).toMillis());
            assertTrue(arrived.isEmpty(), "a paused queue dispatches nothing");
            assertEquals(5, client.purgeQueue("java.paused"), "every waiting job is purged and counted");
            String kept = client.push("java.paused", bytes("after"));
            Thread.sleep(s(0.5).toMillis());
            assertTrue(arrived.isEmpty(), "still paused");
            client.resume("java.paused");
            waitFor(() -> arrived.containsKey(kept), s(5), "the job pushed while paused arrives after resume");
            Thread.sleep(s(0.3).toMillis());
            assertEquals(Set.of(kept), arrived.keySet(), "the purged jobs never run: " + purged + held);
        });
    }

    @Test
    void aCancelledScheduledJobNeverRunsAndSchedulesAreListed() {
        assertTimeoutPreemptively(s(20), () -> {
            Map<String, Long> arrived = arrivals("java.cancel");
            PushOptions soon = PushOptions.builder().delay(Duration.ofMillis(800)).build();
            String cancelled = client.push("java.cancel", bytes("never"), soon);
            String runs = client.push("java.cancel", bytes("runs"), soon);
            client.cancel(cancelled, "java.cancel");
            List<String> left = new ArrayList<>();
            client.scheduled("java.cancel").forEach(j -> left.add(j.id()));
            assertEquals(List.of(runs), left, "the cancelled job left the schedule");
            RemoteException twice = assertThrows(RemoteException.class, () -> client.cancel(cancelled));
            assertEquals("not_found", twice.code());
            waitFor(() -> arrived.containsKey(runs), s(5), "the other job runs");
            Thread.sleep(s(0.3).toMillis());
            assertEquals(Set.of(runs), arrived.keySet(), "the cancelled one does not");

            List<Map<String, Object>> schedules = client.schedules();
            assertEquals(1, schedules.size());
            assertEquals("java-yearly", schedules.get(0).get("name"));
            assertEquals("java.yearly", schedules.get(0).get("queue"));
        });
    }

    @Test
    void aHandlersRetryDelayIsHonoured() {
        assertTimeoutPreemptively(s(30), () -> {
            Map<Long, Long> attempts = new ConcurrentHashMap<>();
            Map<Long, String> errors = new ConcurrentHashMap<>();
            Worker w = Worker.builder().endpoint(broker.endpoint).concurrency(1).label("java-retry").build();
            workers.add(w);
            w.handle("java.retry", job -> {
                attempts.put(job.attempt(), System.nanoTime());
                if (job.error() != null) {
                    errors.put(job.attempt(), job.error());
                }
                if (job.attempt() == 1) {
                    throw new RetryLaterException(Duration.ofMillis(1200), "the provider said later");
                }
                return null;
            }).start();
            assertTrue(w.awaitReady(s(5)), "the broker answered READY");
            client.push("java.retry", bytes("card"));
            waitFor(() -> attempts.containsKey(2L), s(10), "the second attempt");
            long gapMs = (attempts.get(2L) - attempts.get(1L)) / 1_000_000;
            assertTrue(gapMs >= 1200, "the next attempt waited the handler's delay, not the queue's: " + gapMs + " ms");
            assertTrue(errors.get(2L).contains("the provider said later"), errors.toString());
        });
    }

    @Test
    void aRetryDelayCannotBeNegative() {
        assertThrows(IllegalArgumentException.class, () -> new RetryLaterException(Duration.ofMillis(-1), "no"));
    }
}
