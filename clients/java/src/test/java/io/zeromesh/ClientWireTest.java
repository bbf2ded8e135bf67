// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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
        return CompletableFuture.supplyAsync(() -> {
            try {
                return client.pushMany("q", bodies, Map.of("k", "v"), Duration.ofSeconds(10));
            } catch (RuntimeException e) {
                return e;
            }
        });
    }

    @Test
    void pushManySendsPushBatchAndResendsTheSameJobsUnderANewMessageId() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            CompletableFuture<Object> call = pushManyAsync(150);
            Received first = next();
            Received second = next();
            assertEquals(Wire.PUSH_BATCH, first.message().command());
            assertEquals(100, first.message().bodies().size());
            assertEquals(50, second.message().bodies().size());
            assertEquals("job 0", new String(first.message().bodies().get(0), UTF_8));
            assertEquals(Map.of("k", "v"), first.message().header().get("headers"));
            // The first is confirmed whole; the second is not, so it comes again.
            send(first.peer(), Codec.packControl(Wire.CONFIRM, Map.of("id", "c1", "ids", List.of(),
                    "batches", List.of(first.message().header().get("id")))));
            Received again = next();
            assertEquals(Wire.PUSH_BATCH, again.message().command());
            assertTrue(!again.message().header().get("id").equals(second.message().header().get("id")),
                    "a resend has a new message id");
            assertEquals(second.message().header().get("ids"), again.message().header().get("ids"));
            send(first.peer(), Codec.packControl(Wire.CONFIRM, Map.of("id", "c2", "ids", List.of(),
                    "batches", List.of(again.message().header().get("id")))));
            List<Object> expected = new ArrayList<>((List<?>) first.message().header().get("ids"));
            expected.addAll((List<?>) second.message().header().get("ids"));
            assertEquals(expected, call.get(5, TimeUnit.SECONDS));
        });
    }

    @Test
    void pushManyFallsBackToPushWhenTheBrokerDoesNotKnowPushBatch() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            CompletableFuture<Object> call = pushManyAsync(3);
            Received batch = next();
            assertEquals(Wire.PUSH_BATCH, batch.message().command());
            send(batch.peer(), Codec.packControl(Wire.ERROR, Map.of("id", "e1", "re", batch.message().header().get("id"),
                    "code", "unknown_command", "message", "unknown command 0x11")));
            Received push = next();
            assertEquals(Wire.PUSH, push.message().command());
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
            TimeoutException e = assertThrows(TimeoutException.class,
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
            assertInstanceOf(TimeoutException.class, call.get(5, TimeUnit.SECONDS));
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
            assertInstanceOf(TimeoutException.class, call.get(5, TimeUnit.SECONDS));
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
