// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Traces (DESIGN issue 19) on the wire, against a scripted ROUTER that both a {@link Worker} and
 * the {@link Client} its handlers use talk to: READY's host, and what a handler pushes or requests
 * carrying the handled message's trace with its id as parent.
 */
class TraceWireTest {
    private ZContext ctx;
    private ZMQ.Socket router;
    private String endpoint;
    private Client client;
    private Worker worker;
    private final List<ExecutorService> pools = new ArrayList<>();

    record Received(byte[] peer, Message message) {}

    @BeforeEach
    void bind() {
        ctx = new ZContext();
        router = ctx.createSocket(SocketType.ROUTER);
        router.setLinger(0);
        endpoint = "tcp://127.0.0.1:" + router.bindToRandomPort("tcp://127.0.0.1");
        client = Client.builder().endpoint(endpoint).build();
    }

    @AfterEach
    void unbind() {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            if (worker != null) {
                worker.close(Duration.ofSeconds(1));
            }
            pools.forEach(ExecutorService::shutdownNow);
            client.close();
            ctx.close();
        });
    }

    private ExecutorService pool(int threads) {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        pools.add(pool);
        return pool;
    }

    private Worker start(Map<String, Handler> handlers, Worker.Builder builder) {
        worker = builder.endpoint(endpoint).build();
        handlers.forEach(worker::handle);
        return worker.start();
    }

    /** The next message but HEARTBEATs; fails after a bounded wait. */
    private Received next() {
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
            if (m.command() != Wire.HEARTBEAT) {
                return new Received(peer, m);
            }
        }
        throw new AssertionError("nothing within 5 s");
    }

    private void send(byte[] peer, List<byte[]> frames) {
        router.send(peer, ZMQ.SNDMORE);
        for (int i = 0; i < frames.size(); i++) {
            router.send(frames.get(i), i < frames.size() - 1 ? ZMQ.SNDMORE : 0);
        }
    }

    /** Take the worker's READY and answer it as the broker does; returns [peer, READY]. */
    private Received accept() {
        Received ready = next();
        assertEquals(Wire.READY, ready.message().command(), () -> "got " + ready.message().name());
        send(ready.peer(), Codec.packControl(Wire.HEARTBEAT, Map.of("id", "hb", "epoch", "e1")));
        return ready;
    }

    private static Map<String, Object> delivery(String id, String trace, String queue) {
        Map<String, Object> h = new LinkedHashMap<>();
        h.put("id", id);
        h.put("queue", queue);
        h.put("attempt", 1L);
        h.put("trace", trace);
        h.put("lease_ms", 60_000L);
        return h;
    }

    /**
     * Answer the client's messages as a broker would (CONFIRM, REPLY) until the worker has settled
     * (ACK, NACK, REPLY, ERROR) every id of {@code settled}; returns the client's messages.
     */
    private List<Message> serve(Set<String> settled) {
        Set<String> left = new HashSet<>(settled);
        List<Message> seen = new ArrayList<>();
        while (!left.isEmpty()) {
            Received r = next();
            Message m = r.message();
            Map<String, Object> h = m.header();
            switch (m.command()) {
                case Wire.PUSH -> {
                    seen.add(m);
                    send(r.peer(), Codec.packControl(Wire.CONFIRM, Map.of("id", "c", "ids", List.of(h.get("id")))));
                }
                case Wire.PUSH_PACKED, Wire.PUSH_BATCH -> {
                    seen.add(m);
                    send(r.peer(), Codec.packControl(Wire.CONFIRM,
                            Map.of("id", "c", "ids", List.of(), "batches", List.of(h.get("id")))));
                }
                case Wire.REQUEST -> {
                    seen.add(m);
                    send(r.peer(), Codec.packItem(Wire.REPLY, new HashMap<>(Map.of("id", "rp", "re", h.get("id"))),
                            "ok".getBytes(UTF_8)));
                }
                case Wire.ACK -> left.removeAll((List<?>) h.get("ids"));
                case Wire.NACK, Wire.REPLY, Wire.ERROR -> left.remove(h.get("re"));
                default -> { }
            }
        }
        return seen;
    }

    /** The queue or service and the body of a client message (one PUSH item, or a batch's first body). */
    private static String key(Message m) {
        Object name = m.header().containsKey("queue") ? m.header().get("queue") : m.header().get("service");
        byte[] body = m.items().isEmpty() ? m.bodies().get(0) : m.items().get(0).body();
        return name + ":" + new String(body, UTF_8);
    }

    private static List<Object> traceOf(Message m) {
        return java.util.Arrays.asList(m.header().get("trace"), m.header().get("parent"));
    }

    private static Map<String, List<Object>> byKey(List<Message> seen) {
        Map<String, List<Object>> out = new HashMap<>();
        seen.forEach(m -> out.put(key(m), traceOf(m)));
        return out;
    }

    @Test
    void readyCarriesTheHostName() throws Exception {
        assertTimeoutPreemptively(TestSupport.seconds(15), () -> {
            start(Map.of("q", job -> null), Worker.builder());
            Map<String, Object> ready = accept().message().header();
            assertEquals(InetAddress.getLocalHost().getHostName(), ready.get("host"));
            assertEquals(Worker.hostName(), ready.get("host"));
        });
    }

    @Test
    void whatAHandlerSendsCarriesItsTraceAndIdAsParent() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            ExecutorService side = pool(1);
            Handler handler = job -> {
                assertEquals(job, Worker.currentJob().orElseThrow());
                client.push("child", "one".getBytes(UTF_8));
                client.pushMany("kids", List.of("a".getBytes(UTF_8), "b".getBytes(UTF_8)));
                client.request("svc", "ask".getBytes(UTF_8), Duration.ofSeconds(5));
                client.push("mine", "explicit".getBytes(UTF_8), PushOptions.builder().trace("own").build());
                client.push("mine", "explicit-parent".getBytes(UTF_8),
                        PushOptions.builder().trace("own").parent("p-9").build());
                // A thread the handler starts inherits nothing, unless its task is carried.
                side.submit(() -> client.push("side", "plain".getBytes(UTF_8))).get(10, TimeUnit.SECONDS);
                side.submit(Worker.carrying(job, () -> client.push("side", "carried".getBytes(UTF_8))))
                        .get(10, TimeUnit.SECONDS);
                return "done".getBytes(UTF_8);
            };
            start(Map.of("q", handler, "front", handler), Worker.builder());
            byte[] peer = accept().peer();
            send(peer, Codec.packItem(Wire.JOB, delivery("j1", "T1", "q"), new byte[0]));
            check(byKey(serve(Set.of("j1"))), "T1", "j1");
            Map<String, Object> request = new LinkedHashMap<>(Map.of("id", "r1", "service", "front",
                    "timeout_ms", 10_000L, "trace", "T2", "attempt", 1L));
            send(peer, Codec.packItem(Wire.REQUEST, request, new byte[0]));
            check(byKey(serve(Set.of("r1"))), "T2", "r1");
        });
    }

    private static void check(Map<String, List<Object>> got, String trace, String parent) {
        for (String key : List.of("child:one", "kids:a", "svc:ask", "side:carried")) {
            assertEquals(List.of(trace, parent), got.get(key), key + " from the handler of " + parent);
        }
        assertEquals(java.util.Arrays.asList("own", null), got.get("mine:explicit"), "an explicit trace wins");
        assertEquals(List.of("own", "p-9"), got.get("mine:explicit-parent"));
        assertEquals(java.util.Arrays.asList(null, null), got.get("side:plain"), "another thread inherits nothing");
    }

    @Test
    void afterTheHandlerItsThreadSendsItsOwnTrace() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            ExecutorService one = pool(1); // the worker's handler thread, which the test reuses after
            start(Map.of("ok", job -> null, "bad", job -> {
                throw new IllegalStateException("broken");
            }), Worker.builder().executor(one));
            byte[] peer = accept().peer();
            for (String queue : List.of("ok", "bad")) {
                send(peer, Codec.packItem(Wire.JOB, delivery("j-" + queue, "T-" + queue, queue), new byte[0]));
                assertTrue(serve(Set.of("j-" + queue)).isEmpty());
                Future<Boolean> after = one.submit(() -> Worker.currentJob().isPresent());
                Future<String> push = one.submit(() -> client.push("after", queue.getBytes(UTF_8)));
                Message m = serveOne();
                assertEquals(java.util.Arrays.asList(null, null), traceOf(m), "a push after the '" + queue + "' handler");
                push.get(10, TimeUnit.SECONDS);
                assertFalse(after.get(10, TimeUnit.SECONDS), "no current job after the '" + queue + "' handler");
            }
        });
    }

    /** The next client message, confirmed. */
    private Message serveOne() {
        Received r = next();
        assertEquals(Wire.PUSH, r.message().command(), () -> "got " + r.message().name());
        send(r.peer(), Codec.packControl(Wire.CONFIRM, Map.of("id", "c", "ids", List.of(r.message().header().get("id")))));
        return r.message();
    }

    @Test
    void twoHandlersAtOnceKeepTheirOwnTraces() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            CountDownLatch both = new CountDownLatch(2);
            start(Map.of("q", job -> {
                both.countDown();
                assertTrue(both.await(10, TimeUnit.SECONDS)); // both run at once before either pushes
                client.push("child", job.id().getBytes(UTF_8));
                return null;
            }), Worker.builder().concurrency(2));
            byte[] peer = accept().peer();
            send(peer, Codec.packItems(Wire.JOB, List.of(new Item(delivery("j1", "T1", "q"), new byte[0]),
                    new Item(delivery("j2", "T2", "q"), new byte[0]))));
            Map<String, List<Object>> got = byKey(serve(Set.of("j1", "j2")));
            assertEquals(Map.of("child:j1", List.of("T1", "j1"), "child:j2", List.of("T2", "j2")), got);
        });
    }

    @Test
    void aParentNeedsATraceAndBothMustBeNames() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PushOptions.builder().parent("p").build());
        assertTrue(e.getMessage().contains("a parent needs a trace"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> PushOptions.builder().trace(""));
        assertThrows(IllegalArgumentException.class, () -> PushOptions.builder().trace("t").parent("x".repeat(256)));
    }
}
