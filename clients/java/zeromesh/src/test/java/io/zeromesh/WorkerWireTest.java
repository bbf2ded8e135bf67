// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/** The worker's wire behaviour against a scripted ROUTER standing in for the broker. */
class WorkerWireTest {
    private static final Duration BEAT = Duration.ofMillis(200);

    private ZContext ctx;
    private ZMQ.Socket router;
    private String endpoint;
    private Worker worker;

    /** One message as the broker sees it: the peer's routing id and the decoded message. */
    record Received(byte[] peer, Message message) {
        String name() {
            return message.name();
        }
    }

    @BeforeEach
    void bind() {
        ctx = new ZContext();
        router = ctx.createSocket(SocketType.ROUTER);
        router.setLinger(0);
        int port = router.bindToRandomPort("tcp://127.0.0.1");
        endpoint = "tcp://127.0.0.1:" + port;
    }

    @AfterEach
    void unbind() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            if (worker != null) {
                worker.close(Duration.ofSeconds(1));
            }
            ctx.close();
        });
    }

    private Worker start(Handler handler) {
        worker = Worker.builder().endpoint(endpoint).concurrency(2).heartbeat(BEAT).label("wire-test").build();
        worker.handle("thumbs", handler).start();
        return worker;
    }

    /** The next message from the worker, skipping HEARTBEATs unless asked for; fails after a bounded wait. */
    private Received next(boolean skipHeartbeats) {
        long deadline = System.nanoTime() + TestSupport.seconds(5).toNanos();
        while (System.nanoTime() < deadline) {
            router.setReceiveTimeOut(100);
            byte[] peer = router.recv(0);
            if (peer == null) {
                continue;
            }
            List<byte[]> frames = new ArrayList<>();
            while (router.hasReceiveMore()) {
                frames.add(router.recv(0));
            }
            Message m = Codec.unpack(frames);
            if (skipHeartbeats && m.command() == Wire.HEARTBEAT) {
                continue;
            }
            return new Received(peer, m);
        }
        throw new AssertionError("nothing from the worker within 5 s");
    }

    private Received expect(String command) {
        Received r = next(!command.equals("HEARTBEAT"));
        assertEquals(command, r.name(), () -> "got " + r.message().header());
        return r;
    }

    private void send(byte[] peer, List<byte[]> frames) {
        router.send(peer, ZMQ.SNDMORE);
        for (int i = 0; i < frames.size(); i++) {
            router.send(frames.get(i), i < frames.size() - 1 ? ZMQ.SNDMORE : 0);
        }
    }

    private void heartbeat(byte[] peer, String epoch) {
        send(peer, Codec.packControl(Wire.HEARTBEAT, Map.of("id", "b-" + System.nanoTime(), "epoch", epoch)));
    }

    private void job(byte[] peer, String id) {
        Map<String, Object> h = new LinkedHashMap<>();
        h.put("id", id);
        h.put("queue", "thumbs");
        h.put("attempt", 1);
        h.put("trace", id);
        h.put("lease_ms", 60000);
        send(peer, Codec.packItem(Wire.JOB, h, id.getBytes(UTF_8)));
    }

    @Test
    void readyThenJobsAreAckedInOneMessage() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            start(job -> null);
            Received ready = expect("READY");
            assertEquals(List.of("thumbs"), ready.message().header().get("names"));
            assertEquals(8L, ready.message().header().get("credit"));
            assertEquals("java", ready.message().header().get("lang"));
            assertEquals("wire-test", ready.message().header().get("label"));
            heartbeat(ready.peer(), "e1");
            assertTrue(worker.awaitReady(TestSupport.seconds(5)));
            job(ready.peer(), "j1");
            job(ready.peer(), "j2");
            List<Object> acked = new ArrayList<>();
            while (acked.size() < 2) {
                Received ack = expect("ACK");
                assertArrayEquals(ready.peer(), ack.peer());
                acked.addAll((List<?>) ack.message().header().get("ids"));
            }
            assertEquals(List.of("j1", "j2"), acked.stream().sorted().toList());
        });
    }

    @Test
    void jobBatchIsHandledJobByJob() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            java.util.concurrent.BlockingQueue<Job> got = new java.util.concurrent.LinkedBlockingQueue<>();
            start(job -> {
                got.add(job);
                if (job.id().equals("b2")) {
                    throw new IllegalStateException("no");
                }
                return null;
            });
            Received ready = expect("READY");
            assertEquals(true, ready.message().header().get("batch"));
            assertEquals(true, ready.message().header().get("packed"));
            heartbeat(ready.peer(), "e1");
            Map<String, Object> h = new LinkedHashMap<>();
            h.put("id", "m1");
            h.put("queue", "thumbs");
            h.put("lease_ms", 30000);
            h.put("ids", List.of("b1", "b2", "b3"));
            h.put("headers", Map.of("k", "v"));
            send(ready.peer(), Codec.packBatch(Wire.JOB_BATCH, h,
                    List.of("one".getBytes(UTF_8), "two".getBytes(UTF_8), new byte[0])));
            Map<String, Job> jobs = new java.util.TreeMap<>();
            while (jobs.size() < 3) {
                Job job = got.poll(5, TimeUnit.SECONDS);
                assertNotNull(job, "every job of the batch reaches the handler");
                jobs.put(job.id(), job);
            }
            assertEquals(List.of("b1", "b2", "b3"), new ArrayList<>(jobs.keySet()));
            Job first = jobs.get("b1");
            assertEquals(Job.Kind.JOB, first.kind());
            assertEquals("thumbs", first.name());
            assertEquals("one", first.text());
            assertEquals(1, first.attempt());
            assertEquals("b1", first.trace());
            assertEquals(null, first.error());
            assertEquals(Duration.ofSeconds(30), first.lease());
            assertEquals(Map.of("k", "v"), first.headers());
            assertEquals(0, jobs.get("b3").body().length);
            List<Object> acked = new ArrayList<>();
            Map<String, Object> nack = null;
            while (acked.size() < 2 || nack == null) {
                Received r = next(true);
                if (r.message().command() == Wire.ACK) {
                    acked.addAll((List<?>) r.message().header().get("ids"));
                } else {
                    assertEquals("NACK", r.name());
                    nack = r.message().header();
                }
            }
            assertEquals(List.of("b1", "b3"), acked.stream().sorted().toList());
            assertEquals("b2", nack.get("re"));
        });
    }

    @Test
    void jobPackedIsHandledJobByJob() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            java.util.concurrent.BlockingQueue<Job> got = new java.util.concurrent.LinkedBlockingQueue<>();
            start(job -> {
                got.add(job);
                return null;
            });
            Received ready = expect("READY");
            assertEquals(true, ready.message().header().get("packed"));
            heartbeat(ready.peer(), "e1");
            Map<String, Object> h = new LinkedHashMap<>();
            h.put("id", "m2");
            h.put("queue", "thumbs");
            h.put("lease_ms", 30000);
            h.put("ids", List.of("p1", "p2", "p3", "p4"));
            h.put("headers", Map.of("k", "v"));
            List<byte[]> frames = Codec.packPacked(Wire.JOB_PACKED, h, List.of("cat.png".getBytes(UTF_8),
                    new byte[0], "dog.png".getBytes(UTF_8), new byte[] {0, (byte) 0xff, 0}));
            assertEquals(3, frames.size(), "one packed frame for every body");
            send(ready.peer(), frames);
            Map<String, Job> jobs = new java.util.TreeMap<>();
            while (jobs.size() < 4) {
                Job job = got.poll(5, TimeUnit.SECONDS);
                assertNotNull(job, "every job of the packed message reaches the handler");
                jobs.put(job.id(), job);
            }
            assertEquals(List.of("p1", "p2", "p3", "p4"), new ArrayList<>(jobs.keySet()));
            assertEquals("cat.png", jobs.get("p1").text());
            assertEquals(0, jobs.get("p2").body().length);
            assertEquals("dog.png", jobs.get("p3").text());
            assertArrayEquals(new byte[] {0, (byte) 0xff, 0}, jobs.get("p4").body());
            for (Job job : jobs.values()) {
                assertEquals(Job.Kind.JOB, job.kind());
                assertEquals("thumbs", job.name());
                assertEquals(1, job.attempt());
                assertEquals(job.id(), job.trace());
                assertEquals(null, job.error());
                assertEquals(Duration.ofSeconds(30), job.lease());
                assertEquals(Map.of("k", "v"), job.headers());
            }
            List<Object> acked = new ArrayList<>();
            while (acked.size() < 4) {
                Received ack = expect("ACK");
                assertArrayEquals(ready.peer(), ack.peer());
                acked.addAll((List<?>) ack.message().header().get("ids"));
            }
            assertEquals(List.of("p1", "p2", "p3", "p4"), acked.stream().sorted().toList());
        });
    }

    @Test
    void noBatchWorkerDoesNotAnnounceIt() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            worker = Worker.builder().endpoint(endpoint).heartbeat(BEAT).batch(false).build();
            worker.handle("thumbs", job -> null).start();
            Map<String, Object> header = expect("READY").message().header();
            assertEquals(null, header.get("batch"));
            assertEquals(null, header.get("packed"), "no JOB_PACKED without batches either");
        });
    }

    @Test
    void heartbeatsKeepComingWhileHandlersAreBusy() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            CountDownLatch release = new CountDownLatch(1);
            start(job -> {
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
                while (System.nanoTime() < end && release.getCount() > 0) {
                    Math.sqrt(System.nanoTime()); // CPU-bound
                }
                return null;
            });
            Received ready = expect("READY");
            heartbeat(ready.peer(), "e1");
            job(ready.peer(), "busy-1");
            job(ready.peer(), "busy-2");
            long start = System.nanoTime();
            int beats = 0;
            while (beats < 5) {
                Received r = next(false);
                assertArrayEquals(ready.peer(), r.peer(), "no reconnection: " + r.name());
                if (r.message().command() == Wire.HEARTBEAT) {
                    beats++;
                    heartbeat(ready.peer(), "e1"); // the broker's own beat keeps the worker's liveness
                }
            }
            long took = (System.nanoTime() - start) / 1_000_000;
            assertTrue(took < 5 * BEAT.toMillis() + 600, "5 heartbeats took " + took + " ms");
            release.countDown();
        });
    }

    @Test
    void unknownPeerGetsReadyOnTheSameConnection() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            start(job -> null);
            Received ready = expect("READY");
            heartbeat(ready.peer(), "e1");
            assertTrue(worker.awaitReady(TestSupport.seconds(5)));
            send(ready.peer(), Codec.packControl(Wire.ERROR, Map.of("id", "x1", "code", "unknown_peer",
                    "message", "who are you")));
            Received again = expect("READY");
            assertArrayEquals(ready.peer(), again.peer(), "same socket");
        });
    }

    @Test
    void epochChangeMeansAFreshSocketAndReady() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            start(job -> null);
            Received ready = expect("READY");
            heartbeat(ready.peer(), "e1");
            assertTrue(worker.awaitReady(TestSupport.seconds(5)));
            heartbeat(ready.peer(), "e2"); // the broker restarted
            Received left = expect("DISCONNECT"); // the old registration is dropped at once, not left to expire
            assertArrayEquals(ready.peer(), left.peer(), "DISCONNECT on the connection left behind");
            assertEquals("reconnecting: broker epoch changed e1 -> e2", left.message().header().get("reason"));
            Received again = expect("READY");
            assertFalse(Arrays.equals(ready.peer(), again.peer()), "a new DEALER is a new peer");
        });
    }

    @Test
    void jobsOfAReplacedConnectionAreAbandoned() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            CountDownLatch release = new CountDownLatch(1);
            List<String> ran = java.util.Collections.synchronizedList(new ArrayList<>());
            start(job -> { // two handler threads: j1 and j2 run, j3 waits behind them
                ran.add(job.id());
                release.await(10, TimeUnit.SECONDS);
                return null;
            });
            Received ready = expect("READY");
            heartbeat(ready.peer(), "e1");
            assertTrue(worker.awaitReady(TestSupport.seconds(5)));
            job(ready.peer(), "j1");
            job(ready.peer(), "j2");
            job(ready.peer(), "j3");
            long deadline = System.nanoTime() + TestSupport.seconds(5).toNanos();
            while (ran.size() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            heartbeat(ready.peer(), "e2"); // the broker restarted: this connection is left behind
            expect("DISCONNECT");
            Received again = expect("READY");
            heartbeat(again.peer(), "e2");
            release.countDown();
            List<String> after = new ArrayList<>();
            long quiet = System.nanoTime() + TestSupport.seconds(0.8).toNanos();
            while (System.nanoTime() < quiet) {
                router.setReceiveTimeOut(100);
                byte[] peer = router.recv(0);
                if (peer == null) {
                    continue;
                }
                List<byte[]> frames = new ArrayList<>();
                while (router.hasReceiveMore()) {
                    frames.add(router.recv(0));
                }
                Message m = Codec.unpack(frames);
                if (m.command() == Wire.ACK || m.command() == Wire.NACK || m.command() == Wire.ERROR) {
                    after.add(m.name() + " " + m.header()); // (READY and DISCONNECT: silence makes it reconnect)
                }
            }
            assertEquals(List.of(), after, "results of the old connection's jobs are dropped, not sent on the new one");
            assertEquals(List.of("j1", "j2"), ran.stream().sorted().toList(), "j3, not started, never runs");
        });
    }

    @Test
    void silenceForThreeIntervalsMeansAFreshSocket() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            start(job -> null);
            Received ready = expect("READY");
            heartbeat(ready.peer(), "e1");
            assertTrue(worker.awaitReady(TestSupport.seconds(5)));
            long start = System.nanoTime();
            Received left = expect("DISCONNECT"); // we answer nothing more
            long took = (System.nanoTime() - start) / 1_000_000;
            assertArrayEquals(ready.peer(), left.peer(), "DISCONNECT on the connection left behind");
            Received again = expect("READY");
            assertFalse(Arrays.equals(ready.peer(), again.peer()));
            assertTrue(took >= 2 * BEAT.toMillis(), "reconnected after " + took + " ms");
        });
    }

    @Test
    void requestFailureBecomesRemoteErrorAndCloseIsGraceful() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            start(job -> {
                throw new java.io.IOException("disk full");
            });
            Received ready = expect("READY");
            heartbeat(ready.peer(), "e1");
            Map<String, Object> h = new LinkedHashMap<>();
            h.put("id", "r1");
            h.put("service", "thumbs");
            h.put("timeout_ms", 5000);
            send(ready.peer(), Codec.packItem(Wire.REQUEST, h, new byte[0]));
            Map<String, Object> error = expect("ERROR").message().header();
            assertEquals("r1", error.get("re"));
            assertEquals("remote", error.get("code"));
            assertEquals("java.io.IOException", error.get("name"));
            assertEquals("disk full", error.get("message"));
            assertTrue(((String) error.get("traceback")).contains("java.io.IOException: disk full"));
            job(ready.peer(), "j-fail");
            Map<String, Object> nack = expect("NACK").message().header();
            assertEquals("j-fail", nack.get("re"));
            assertEquals("java.io.IOException: disk full", nack.get("error"));
            assertNotNull(nack.get("id"));
            Thread closer = new Thread(() -> worker.close(Duration.ofSeconds(2)));
            closer.start();
            Received credit = expect("CREDIT");
            assertEquals(0L, credit.message().header().get("credit"));
            expect("DISCONNECT");
            closer.join(TestSupport.seconds(5).toMillis());
            assertFalse(closer.isAlive());
        });
    }
}
