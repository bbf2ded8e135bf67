// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/** The client's wire behaviour against a scripted ROUTER: resends, timeouts, CANCEL, error mapping. */
class ClientWireTest {
    private ZContext ctx;
    private ZMQ.Socket router;
    private Client client;

    record Received(byte[] peer, Message message) {}

    @BeforeEach
    void bind() {
        ctx = new ZContext();
        router = ctx.createSocket(SocketType.ROUTER);
        router.setLinger(0);
        int port = router.bindToRandomPort("tcp://127.0.0.1");
        client = Client.builder().endpoint("tcp://127.0.0.1:" + port).pushResend(Duration.ofMillis(300))
                .requestMargin(Duration.ofMillis(300)).build();
    }

    @AfterEach
    void unbind() {
        assertTimeoutPreemptively(TestSupport.seconds(10), () -> {
            client.close();
            ctx.close();
        });
    }

    private Received next() {
        router.setReceiveTimeOut((int) TestSupport.seconds(5).toMillis());
        byte[] peer = router.recv(0);
        if (peer == null) {
            throw new AssertionError("nothing from the client within 5 s");
        }
        List<byte[]> frames = new ArrayList<>();
        while (router.hasReceiveMore()) {
            frames.add(router.recv(0));
        }
        return new Received(peer, Codec.unpack(frames));
    }

    private void send(byte[] peer, List<byte[]> frames) {
        router.send(peer, ZMQ.SNDMORE);
        for (int i = 0; i < frames.size(); i++) {
            router.send(frames.get(i), i < frames.size() - 1 ? ZMQ.SNDMORE : 0);
        }
    }

    @Test
    void unconfirmedPushIsResentWithTheSameId() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            CompletableFuture<String> f = client.pushAsync("q", "x".getBytes(UTF_8), Map.of(), Duration.ofSeconds(10));
            Received first = next();
            assertEquals(Wire.PUSH, first.message().command());
            String id = (String) first.message().header().get("id");
            long t0 = System.nanoTime();
            Received again = next(); // ignored the first: it comes again
            assertTrue((System.nanoTime() - t0) / 1_000_000 >= 200, "resent after the resend interval");
            assertEquals(id, again.message().header().get("id"));
            assertEquals("q", again.message().header().get("queue"));
            send(again.peer(), Codec.packControl(Wire.CONFIRM, Map.of("id", "c1", "ids", List.of(id))));
            assertEquals(id, f.get(5, TimeUnit.SECONDS));
        });
    }

    private CompletableFuture<Object> pushManyAsync(int count) {
        List<byte[]> bodies = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            bodies.add(("job " + i).getBytes(UTF_8));
        }
        return pushManyAsync(bodies);
    }

    private CompletableFuture<Object> pushManyAsync(List<byte[]> bodies) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return client.pushMany("q", bodies, Map.of("k", "v"), Duration.ofSeconds(10));
            } catch (RuntimeException e) {
                return e;
            }
        });
    }

    /** Confirm whole messages by their message ids (CONFIRM batches). */
    private void confirmBatches(byte[] peer, List<Received> messages) {
        List<Object> batchIds = new ArrayList<>();
        for (Received r : messages) {
            batchIds.add(r.message().header().get("id"));
        }
        send(peer, Codec.packControl(Wire.CONFIRM, Map.of("id", "c-" + System.nanoTime(), "ids", List.of(),
                "batches", batchIds)));
    }

    /** Checks r went as {@code form}, refuses it as unknown_command; returns the next message, sent as {@code then}. */
    private Received refusedThenNext(Received r, int form, int then) {
        assertEquals(form, r.message().command());
        refuseUnknownCommand(r);
        Received next = next();
        assertEquals(then, next.message().command());
        return next;
    }

    private void refuseUnknownCommand(Received r) {
        send(r.peer(), Codec.packControl(Wire.ERROR, Map.of("id", "e-" + System.nanoTime(), "re",
                r.message().header().get("id"), "code", "unknown_command",
                "message", String.format("unknown command 0x%02x", r.message().command()))));
    }

    @Test
    void pushManySendsPushPackedAndResendsTheSameJobsUnderANewMessageId() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            int batch = Defaults.PUSH_BATCH;
            CompletableFuture<Object> call = pushManyAsync(batch + 50);
            Received first = next();
            Received second = next();
            assertEquals(Wire.PUSH_PACKED, first.message().command());
            assertEquals(Wire.PUSH_PACKED, second.message().command());
            assertEquals(batch, first.message().bodies().size());
            assertEquals(50, second.message().bodies().size());
            assertEquals("job 0", new String(first.message().bodies().get(0), UTF_8));
            assertEquals("job " + (batch - 1), new String(first.message().bodies().get(batch - 1), UTF_8));
            assertEquals((long) "job 0".length(), ((List<?>) first.message().header().get("sizes")).get(0));
            assertEquals(Map.of("k", "v"), first.message().header().get("headers"));
            // The first is confirmed whole; the second is not, so it comes again.
            confirmBatches(first.peer(), List.of(first));
            Received again = next();
            assertEquals(Wire.PUSH_PACKED, again.message().command());
            assertTrue(!again.message().header().get("id").equals(second.message().header().get("id")),
                    "a resend has a new message id");
            assertEquals(second.message().header().get("ids"), again.message().header().get("ids"));
            assertEquals("job " + batch, new String(again.message().bodies().get(0), UTF_8));
            confirmBatches(first.peer(), List.of(again));
            List<Object> expected = new ArrayList<>((List<?>) first.message().header().get("ids"));
            expected.addAll((List<?>) second.message().header().get("ids"));
            assertEquals(expected, call.get(5, TimeUnit.SECONDS));
        });
    }

    @Test
    void pushManyFallsBackToPushBatchWhenTheBrokerDoesNotKnowPushPacked() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            CompletableFuture<Object> call = pushManyAsync(3);
            Received packed = next();
            Received batch = refusedThenNext(packed, Wire.PUSH_PACKED, Wire.PUSH_BATCH);
            assertEquals(packed.message().header().get("ids"), batch.message().header().get("ids"));
            assertEquals(null, batch.message().header().get("sizes"));
            assertEquals(Map.of("k", "v"), batch.message().header().get("headers"));
            assertEquals("job 2", new String(batch.message().bodies().get(2), UTF_8));
            // Unconfirmed, it comes again in the same form.
            Received again = next();
            assertEquals(Wire.PUSH_BATCH, again.message().command());
            assertEquals(packed.message().header().get("ids"), again.message().header().get("ids"));
            confirmBatches(again.peer(), List.of(again));
            assertEquals(packed.message().header().get("ids"), call.get(5, TimeUnit.SECONDS));
        });
    }

    @Test
    void pushManyFallsBackToPushWhenTheBrokerKnowsNeitherPushPackedNorPushBatch() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            CompletableFuture<Object> call = pushManyAsync(3);
            Received packed = next();
            Received batch = refusedThenNext(packed, Wire.PUSH_PACKED, Wire.PUSH_BATCH);
            Received push = refusedThenNext(batch, Wire.PUSH_BATCH, Wire.PUSH);
            List<Object> ids = new ArrayList<>();
            for (Item item : push.message().items()) {
                ids.add(item.header().get("id"));
                assertEquals("q", item.header().get("queue"));
                assertEquals(Map.of("k", "v"), item.header().get("headers"));
            }
            assertEquals(batch.message().header().get("ids"), ids);
            send(push.peer(), Codec.packControl(Wire.CONFIRM, Map.of("id", "c1", "ids", ids)));
            assertEquals(ids, call.get(5, TimeUnit.SECONDS));
        });
    }

    @Test
    void refusalsOfOneFormStepDownOnlyOnce() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            int count = 2 * Defaults.PUSH_BATCH + 50; // three messages
            CompletableFuture<Object> call = pushManyAsync(count);
            List<Received> packed = List.of(next(), next(), next());
            Set<Object> jobIds = new HashSet<>();
            for (Received r : packed) {
                assertEquals(Wire.PUSH_PACKED, r.message().command());
                jobIds.addAll((List<?>) r.message().header().get("ids"));
            }
            assertEquals(count, jobIds.size(), "three messages, none a resend");
            // An older broker refuses each of the three: the jobs go as PUSH_BATCH, not PUSH.
            for (Received r : packed) {
                refuseUnknownCommand(r);
            }
            List<Received> batches = new ArrayList<>();
            Set<Object> resent = new HashSet<>();
            while (!resent.equals(jobIds)) {
                Received r = next();
                assertEquals(Wire.PUSH_BATCH, r.message().command(), "one step down for three refusals");
                resent.addAll((List<?>) r.message().header().get("ids"));
                batches.add(r);
            }
            confirmBatches(packed.get(0).peer(), batches);
            List<?> ids = assertInstanceOf(List.class, call.get(5, TimeUnit.SECONDS));
            assertEquals(jobIds, new HashSet<>(ids));
        });
    }

    @Test
    void bodiesPastOneMebibyteGoAsPushBatchAndItsRefusalMeansPush() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            List<byte[]> bodies = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                byte[] body = new byte[400 * 1024];
                java.util.Arrays.fill(body, (byte) ('a' + i));
                bodies.add(body);
            }
            CompletableFuture<Object> call = pushManyAsync(bodies);
            Received batch = next();
            assertEquals(Wire.PUSH_BATCH, batch.message().command(), "1.2 MiB of bodies: no packed frame");
            assertEquals(3, batch.message().bodies().size());
            assertArrayEquals(bodies.get(2), batch.message().bodies().get(2));
            // A broker without PUSH_BATCH knows no PUSH_PACKED either: straight to PUSH.
            Received push = refusedThenNext(batch, Wire.PUSH_BATCH, Wire.PUSH);
            List<Object> ids = new ArrayList<>();
            for (Item item : push.message().items()) {
                ids.add(item.header().get("id"));
            }
            assertEquals(batch.message().header().get("ids"), ids);
            send(push.peer(), Codec.packControl(Wire.CONFIRM, Map.of("id", "c1", "ids", ids)));
            assertEquals(ids, call.get(5, TimeUnit.SECONDS));
        });
    }

    @Test
    void pushManyFailsWhenTheBrokerRefusesTheWholeBatch() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            CompletableFuture<Object> call = pushManyAsync(3);
            Received batch = next();
            send(batch.peer(), Codec.packControl(Wire.ERROR, Map.of("id", "e1", "re", batch.message().header().get("id"),
                    "code", "too_large", "message", "body too large")));
            RemoteException e = assertInstanceOf(RemoteException.class, call.get(5, TimeUnit.SECONDS));
            assertEquals("too_large", e.code());
        });
    }

    @Test
    void pushGivesUpAfterItsTimeout() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            ZeromeshTimeoutException e = assertThrows(ZeromeshTimeoutException.class,
                    () -> client.push("q", new byte[0], null, Duration.ofMillis(700)));
            assertEquals("timeout", e.code());
        });
    }

    @Test
    void refusedPushRaisesQueueFull() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            CompletableFuture<String> f = client.pushAsync("q", new byte[0]);
            Received push = next();
            send(push.peer(), Codec.packControl(Wire.ERROR, Map.of("id", "e1", "re",
                    push.message().header().get("id"), "code", "queue_full", "message", "queue q is full")));
            ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(5, TimeUnit.SECONDS));
            assertInstanceOf(QueueFullException.class, e.getCause());
            assertEquals("queue q is full", e.getCause().getMessage());
        });
    }

    @Test
    void unansweredRequestTimesOutAndIsCancelled() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            CompletableFuture<Throwable> call = CompletableFuture.supplyAsync(() -> {
                try {
                    client.request("svc", "x".getBytes(UTF_8), Duration.ofMillis(400));
                    return null;
                } catch (RuntimeException e) {
                    return e;
                }
            });
            Received request = next();
            assertEquals(Wire.REQUEST, request.message().command());
            assertEquals(400L, request.message().header().get("timeout_ms"));
            Received cancel = next();
            assertEquals(Wire.CANCEL, cancel.message().command());
            assertEquals(request.message().header().get("id"), cancel.message().header().get("re"));
            assertInstanceOf(ZeromeshTimeoutException.class, call.get(5, TimeUnit.SECONDS));
        });
    }

    @Test
    void brokerTimeoutErrorIsATimeoutException() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            CompletableFuture<Throwable> call = CompletableFuture.supplyAsync(() -> {
                try {
                    client.request("svc", new byte[0], Duration.ofSeconds(5));
                    return null;
                } catch (RuntimeException e) {
                    return e;
                }
            });
            Received request = next();
            send(request.peer(), Codec.packControl(Wire.ERROR, Map.of("id", "e2", "re",
                    request.message().header().get("id"), "code", "timeout", "message", "deadline passed")));
            assertInstanceOf(ZeromeshTimeoutException.class, call.get(5, TimeUnit.SECONDS));
        });
    }

    @Test
    void garbageFromTheBrokerIsDroppedNotFatal() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            CompletableFuture<String> epoch = CompletableFuture.supplyAsync(() -> client.ping(Duration.ofSeconds(5)));
            Received ping = next();
            send(ping.peer(), List.of(new byte[] {1, 2, 3}, new byte[0]));
            send(ping.peer(), Codec.packControl(Wire.HEARTBEAT, Map.of("id", "h1", "epoch", "e9",
                    "re", ping.message().header().get("id"))));
            assertEquals("e9", epoch.get(5, TimeUnit.SECONDS));
        });
    }
}
