// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.parallel.Isolated;

/** The Java client and worker against a real Python broker process. */
// Isolated: its LogCapture reads the client's and worker's loggers, which every test class's
// clients write to; with other classes running at once it would read their lines too.
@Isolated
class LiveBrokerTest {
    static BrokerProcess broker;

    private Client client;
    private final List<Worker> workers = new ArrayList<>();

    @BeforeAll
    static void startBroker() throws Exception {
        broker = new BrokerProcess(TestSupport.logDir()).start();
    }

    @AfterAll
    static void stopBroker() throws Exception {
        if (broker != null) {
            broker.close();
        }
    }

    @BeforeEach
    void connect() {
        client = Client.builder().endpoint(broker.endpoint).pubEndpoint(broker.pubEndpoint).build();
    }

    @AfterEach
    void disconnect() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            for (Worker w : workers) {
                w.close(Duration.ofSeconds(2));
            }
            client.close();
        });
    }

    private Worker worker(String name, Handler handler) throws InterruptedException {
        Worker w = Worker.builder().endpoint(broker.endpoint).concurrency(2).label("java-test").build();
        workers.add(w);
        w.handle(name, handler).start();
        assertTrue(w.awaitReady(TestSupport.seconds(5)), "the broker answered READY");
        return w;
    }

    /** Start a worker for {@code queue} that takes every job of {@code ids}; the jobs it got, by id. */
    private Map<String, Job> workAll(String queue, List<String> ids) throws InterruptedException {
        Map<String, Job> got = new java.util.concurrent.ConcurrentHashMap<>();
        worker(queue, job -> {
            got.put(job.id(), job);
            return null;
        });
        long deadline = System.nanoTime() + s(15).toNanos();
        while (got.size() < ids.size() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(new HashSet<>(ids), got.keySet());
        return got;
    }

    private static Duration s(double seconds) {
        return TestSupport.seconds(seconds);
    }

    @Test
    void pushGoesToJavaWorkerAndIsAcked() {
        assertTimeoutPreemptively(s(20), () -> {
            BlockingQueue<Job> got = new LinkedBlockingQueue<>();
            worker("java.jobs", job -> {
                got.add(job);
                return null;
            });
            String id = client.push("java.jobs", "hello".getBytes(UTF_8), Map.of("k", "v"), Duration.ofSeconds(10));
            Job job = got.poll(s(5).toMillis(), TimeUnit.MILLISECONDS);
            assertNotNull(job, "the worker received the job");
            assertEquals(id, job.id());
            assertEquals("hello", job.text());
            assertEquals(Map.of("k", "v"), job.headers());
            assertEquals(1, job.attempt());
            assertEquals(Job.Kind.JOB, job.kind());
            waitForState(id, "done");
        });
    }

    @Test
    void failedJobIsNackedAndRedelivered() {
        assertTimeoutPreemptively(s(20), () -> {
            BlockingQueue<Job> got = new LinkedBlockingQueue<>();
            worker("java.flaky", job -> {
                got.add(job);
                if (job.attempt() == 1) {
                    throw new IllegalStateException("first try fails");
                }
                return null;
            });
            String id = client.push("java.flaky", new byte[] {1, 2, 3});
            Job first = got.poll(s(5).toMillis(), TimeUnit.MILLISECONDS);
            Job second = got.poll(s(5).toMillis(), TimeUnit.MILLISECONDS);
            assertNotNull(first);
            assertNotNull(second, "redelivered after the NACK");
            assertEquals(id, second.id());
            assertEquals(2, second.attempt());
            assertEquals("java.lang.IllegalStateException: first try fails", second.error());
            waitForState(id, "done");
        });
    }

    @Test
    void deadLetterExceptionDeadLettersAtOnce() {
        assertTimeoutPreemptively(s(20), () -> {
            worker("java.poison", job -> {
                throw new DeadLetterException("cannot parse");
            });
            String id = client.push("java.poison", "x".getBytes(UTF_8));
            waitForState(id, "dead_letter");
        });
    }

    @Test
    void pushManyAndPushAsyncArePipelined() {
        assertTimeoutPreemptively(s(30), () -> {
            Set<String> seen = java.util.concurrent.ConcurrentHashMap.newKeySet();
            worker("java.many", job -> {
                seen.add(job.id());
                return null;
            });
            List<byte[]> bodies = new ArrayList<>();
            for (int i = 0; i < 500; i++) {
                bodies.add(("job " + i).getBytes(UTF_8));
            }
            List<String> ids = new ArrayList<>(client.pushMany("java.many", bodies));
            assertEquals(500, new HashSet<>(ids).size());
            List<CompletableFuture<String>> futures = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                futures.add(client.pushAsync("java.many", ("async " + i).getBytes(UTF_8)));
            }
            for (CompletableFuture<String> f : futures) {
                ids.add(f.get(10, TimeUnit.SECONDS));
            }
            long deadline = System.nanoTime() + s(15).toNanos();
            while (!seen.containsAll(ids) && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(seen.containsAll(ids), seen.size() + " of " + ids.size() + " jobs handled");
        });
    }

    /** Log records of the JUL logger {@code name} at DEBUG (FINE) and above, while the returned handle is open. */
    private static final class LogCapture implements AutoCloseable {
        final List<String> lines = java.util.Collections.synchronizedList(new ArrayList<>());
        private final java.util.logging.Logger logger;
        private final java.util.logging.Level level;
        private final java.util.logging.Handler handler = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                lines.add(new java.util.logging.SimpleFormatter().formatMessage(r));
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };

        LogCapture(String name) {
            logger = java.util.logging.Logger.getLogger(name);
            level = logger.getLevel();
            handler.setLevel(java.util.logging.Level.ALL);
            logger.addHandler(handler);
            logger.setLevel(java.util.logging.Level.FINE);
        }

        boolean any(String part) {
            synchronized (lines) {
                return lines.stream().anyMatch(l -> l.contains(part));
            }
        }

        @Override
        public void close() {
            logger.removeHandler(handler);
            logger.setLevel(level);
        }
    }

    @Test
    void pushManyGoesAsPushPackedAndABatchWorkerGetsJobPacked() {
        assertTimeoutPreemptively(s(30), () -> {
            try (LogCapture clientLog = new LogCapture("io.zeromesh.client");
                    LogCapture workerLog = new LogCapture("io.zeromesh.worker")) {
                // Queued before any worker is there, so the first deliveries go out together.
                List<byte[]> bodies = new ArrayList<>();
                for (int i = 0; i < 250; i++) {
                    bodies.add(("job " + i).getBytes(UTF_8));
                }
                List<String> ids = client.pushMany("java.batch", bodies, Map.of("k", "v"), Duration.ofSeconds(10));
                assertEquals(250, new HashSet<>(ids).size());
                assertFalse(clientLog.any("does not take"), "the broker took PUSH_PACKED");
                Map<String, Job> got = workAll("java.batch", ids);
                for (int i = 0; i < ids.size(); i++) {
                    Job job = got.get(ids.get(i));
                    assertEquals("job " + i, job.text());
                    assertEquals("java.batch", job.name());
                    assertEquals(1, job.attempt());
                    assertEquals(job.id(), job.trace());
                    assertEquals(null, job.error());
                    assertEquals(Map.of("k", "v"), job.headers());
                    assertNotNull(job.lease());
                }
                // READY said packed: true, and 250 small bodies fit a packed frame: no JOB_BATCH.
                assertTrue(workerLog.any("JOB_PACKED of"), "the broker sent JOB_PACKED to a worker that takes it");
                assertFalse(workerLog.any("JOB_BATCH of"), "first deliveries within 1 MiB go as JOB_PACKED");
                waitForState(ids.get(ids.size() - 1), "done");
            }
        });
    }

    @Test
    void bodiesPastOneMebibyteGoAsPushBatchAndJobBatch() {
        assertTimeoutPreemptively(s(30), () -> {
            try (LogCapture clientLog = new LogCapture("io.zeromesh.client");
                    LogCapture workerLog = new LogCapture("io.zeromesh.worker")) {
                // 1.2 MiB of bodies: more than one packed frame holds, so a frame each both ways.
                List<byte[]> bodies = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    byte[] body = new byte[400 * 1024];
                    java.util.Arrays.fill(body, (byte) ('a' + i));
                    bodies.add(body);
                }
                List<String> ids = client.pushMany("java.large", bodies, null, Duration.ofSeconds(10));
                assertFalse(clientLog.any("does not take"), "the broker took PUSH_BATCH");
                Map<String, Job> got = workAll("java.large", ids);
                for (int i = 0; i < ids.size(); i++) {
                    assertArrayEquals(bodies.get(i), got.get(ids.get(i)).body());
                }
                assertTrue(workerLog.any("JOB_BATCH of"), "bodies past 1 MiB went as JOB_BATCH");
                assertFalse(workerLog.any("JOB_PACKED of"), "no packed frame over 1 MiB");
                waitForState(ids.get(ids.size() - 1), "done");
            }
        });
    }

    @Test
    void requestReachesJavaService() {
        assertTimeoutPreemptively(s(20), () -> {
            worker("java.upper", job -> job.text().toUpperCase().getBytes(UTF_8));
            byte[] answer = client.request("java.upper", "shout".getBytes(UTF_8), Duration.ofSeconds(5));
            assertArrayEquals("SHOUT".getBytes(UTF_8), answer);
            // many threads share one client
            List<CompletableFuture<byte[]>> calls = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                String text = "t" + i;
                calls.add(CompletableFuture.supplyAsync(() -> client.request("java.upper", text.getBytes(UTF_8))));
            }
            for (int i = 0; i < 20; i++) {
                assertEquals("T" + i, new String(calls.get(i).get(10, TimeUnit.SECONDS), UTF_8));
            }
        });
    }

    @Test
    void handlerExceptionBecomesRemoteException() {
        assertTimeoutPreemptively(s(20), () -> {
            worker("java.boom", job -> {
                throw new IllegalArgumentException("bad input");
            });
            RemoteException e = assertThrows(RemoteException.class,
                    () -> client.request("java.boom", new byte[0], Duration.ofSeconds(5)));
            assertEquals("remote", e.code());
            assertEquals("java.lang.IllegalArgumentException", e.name());
            assertEquals("bad input", e.getMessage());
            assertTrue(e.remoteTraceback().contains("IllegalArgumentException"), e.remoteTraceback());
        });
    }

    @Test
    void requestDeadlineGivesTimeoutException() {
        assertTimeoutPreemptively(s(20), () -> {
            BlockingQueue<Boolean> cancelled = new LinkedBlockingQueue<>();
            worker("java.slow", job -> {
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
                while (!job.isCancelled() && System.nanoTime() < end) {
                    Thread.sleep(10);
                }
                cancelled.add(job.isCancelled());
                return new byte[0];
            });
            long start = System.nanoTime();
            assertThrows(ZeromeshTimeoutException.class,
                    () -> client.request("java.slow", new byte[0], Duration.ofMillis(300)));
            long tookMs = (System.nanoTime() - start) / 1_000_000;
            assertTrue(tookMs < s(2.5).toMillis(), "timed out after " + tookMs + " ms");
            assertEquals(Boolean.TRUE, cancelled.poll(s(5).toMillis(), TimeUnit.MILLISECONDS),
                    "the broker's CANCEL reached the handler");
        });
    }

    @Test
    void noRespondersIsReportedAtOnce() {
        assertTimeoutPreemptively(s(10), () -> {
            NoRespondersException e = assertThrows(NoRespondersException.class,
                    () -> client.request("java.nobody", new byte[0], Duration.ofSeconds(5)));
            assertEquals("no_responders", e.code());
        });
    }

    @Test
    void firstMessageOfEveryFreshClientIsAnswered() {
        assertTimeoutPreemptively(s(60), () -> {
            for (int i = 0; i < 30; i++) {
                try (Client fresh = Client.builder().endpoint(broker.endpoint).build()) {
                    assertThrows(NoRespondersException.class,
                            () -> fresh.request("java.nobody", new byte[0], Duration.ofMillis(500)), "client " + i);
                }
            }
        });
    }

    @Test
    void publishReachesJavaSubscriber() {
        assertTimeoutPreemptively(s(20), () -> {
            try (Subscription sub = client.subscribe("java.news.")) {
                Event event = null;
                long deadline = System.nanoTime() + s(10).toNanos();
                // Slow joiner: the subscription reaches the broker some time after connect.
                while (event == null && System.nanoTime() < deadline) {
                    client.publish("java.news.sports", "goal!".getBytes(UTF_8), Map.of("minute", 90));
                    event = sub.next(Duration.ofMillis(100));
                }
                assertNotNull(event, "an event arrived");
                assertEquals("java.news.sports", event.topic());
                assertEquals("goal!", event.text());
                assertEquals(Map.of("minute", 90L), event.headers());
                assertTrue(event.seq() >= 1);
                assertFalse(event.epoch().isEmpty());
                assertFalse(event.gap());
                client.publish("java.other", "not for us".getBytes(UTF_8));
                client.publish("java.news.sports", "second".getBytes(UTF_8));
                Event next = sub.next(s(5));
                while (next != null && next.text().equals("goal!")) {
                    next = sub.next(s(5)); // republished copies still in flight
                }
                assertNotNull(next);
                assertEquals("second", next.text());
                assertFalse(next.gap());
            }
        });
    }

    @Test
    void adminStatusListsTheJavaWorker() {
        assertTimeoutPreemptively(s(20), () -> {
            worker("java.status", job -> null);
            Map<String, Object> status;
            try {
                status = client.admin("status", null, Duration.ofSeconds(5));
            } catch (ZeromeshTimeoutException e) {
                throw new AssertionError(broker.logText(), e);
            }
            assertTrue(String.valueOf(status.get("workers")).contains("java.status"), status.toString());
            assertEquals(client.ping(Duration.ofSeconds(5)), status.get("epoch"));
        });
    }

    private void waitForState(String id, String state) throws InterruptedException {
        long deadline = System.nanoTime() + s(10).toNanos();
        Object last = null;
        while (System.nanoTime() < deadline) {
            last = client.admin("trace", Map.of("id", id), Duration.ofSeconds(5)).get("state");
            if (state.equals(last)) {
                return;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("job " + id + " is " + last + ", not " + state);
    }
}
