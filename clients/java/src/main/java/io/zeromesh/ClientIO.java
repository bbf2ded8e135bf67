// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * The client's I/O thread: the only code that touches the client's DEALER.
 *
 * <p>Callers hand it {@link Op}s through an {@link Outbox}; it sends them, matches the broker's
 * answers to the waiting futures (CONFIRM by job id, REPLY and ERROR by {@code re}), resends
 * unconfirmed pushes every {@code pushResend} and fails them after their timeout. All its state
 * is confined to this thread.
 */
final class ClientIO implements Runnable {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.client");
    /** Resends and push timeouts are checked this often while pushes are pending. */
    private static final long TICK_NANOS = 100_000_000L;
    /** Messages read per wake-up before looking at the callers' ops again. */
    private static final int DRAIN_MAX = 1000;
    /** On close, queued messages (a last publish) get this long to leave. */
    private static final int CLOSE_LINGER_MS = 500;
    static final String PING_PREFIX = "ping:";

    sealed interface Op permits Push, Call, Send, Forget, Close {}

    /** Jobs to push; sent as one PUSH message. */
    record Push(List<PendingPush> jobs) implements Op {}

    /** Send frames and complete {@code result} with the REPLY (or ERROR) whose re is {@code key}. */
    record Call(String key, List<byte[]> frames, CompletableFuture<Item> result) implements Op {}

    /** Send frames; nothing answers them (PUBLISH, CANCEL). */
    record Send(List<byte[]> frames) implements Op {}

    /** The caller gave up waiting for {@code key}. */
    record Forget(String key) implements Op {}

    record Close() implements Op {}

    /** One job until the broker confirms or refuses it. */
    static final class PendingPush {
        final String id;
        final byte[] header;
        final byte[] body;
        final long timeoutNanos;
        final CompletableFuture<String> result = new CompletableFuture<>();
        long deadline;
        long lastSent;

        PendingPush(String id, byte[] header, byte[] body, long timeoutNanos) {
            this.id = id;
            this.header = header;
            this.body = body;
            this.timeoutNanos = timeoutNanos;
        }
    }

    private final ZContext ctx;
    private final String endpoint;
    private final long resendNanos;
    private final int batch;
    final Outbox<Op> outbox;
    final CountDownLatch started = new CountDownLatch(1);
    final CountDownLatch done = new CountDownLatch(1);

    private final Map<String, PendingPush> pushes = new LinkedHashMap<>();
    private final Map<String, CompletableFuture<Item>> calls = new HashMap<>();
    private ZMQ.Socket sock;
    private boolean closing;
    private long nextTick;

    ClientIO(ZContext ctx, String endpoint, long resendNanos, int batch, Outbox<Op> outbox) {
        this.ctx = ctx;
        this.endpoint = endpoint;
        this.resendNanos = resendNanos;
        this.batch = batch;
        this.outbox = outbox;
    }

    @Override
    public void run() {
        ZMQ.Socket pull = null;
        ZMQ.Poller poller = null;
        try {
            pull = outbox.open();
            sock = Sockets.dealer(ctx, endpoint);
            poller = ctx.createPoller(2);
            int pullIndex = poller.register(pull, ZMQ.Poller.POLLIN);
            int sockIndex = poller.register(sock, ZMQ.Poller.POLLIN);
            started.countDown();
            while (!closing) {
                long timeoutMs = pushes.isEmpty() ? -1
                        : Math.max(0, (nextTick - System.nanoTime()) / 1_000_000) + 1;
                poller.poll(timeoutMs);
                if (poller.pollin(pullIndex)) {
                    Outbox.drain(pull); // before take(): see Outbox
                }
                if (poller.pollin(sockIndex)) {
                    read();
                }
                for (Op op : outbox.take()) {
                    handle(op);
                }
                long now = System.nanoTime();
                if (!pushes.isEmpty() && now - nextTick >= 0) {
                    tick(now);
                }
            }
            for (Op op : outbox.close()) { // what callers queued before close(): a last publish goes out
                handle(op);
            }
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "client I/O thread failed", e);
        } finally {
            outbox.close();
            ZeromeshException closed = new ZeromeshException("closed", "the client is closed");
            pushes.values().forEach(p -> p.result.completeExceptionally(closed));
            calls.values().forEach(f -> f.completeExceptionally(closed));
            if (poller != null) {
                poller.close();
            }
            if (sock != null) {
                sock.setLinger(CLOSE_LINGER_MS);
                sock.close();
            }
            if (pull != null) {
                pull.close();
            }
            started.countDown();
            done.countDown();
        }
    }

    private void handle(Op op) {
        if (op instanceof Push push) {
            long now = System.nanoTime();
            for (PendingPush p : push.jobs()) {
                p.deadline = now + p.timeoutNanos;
                pushes.put(p.id, p);
            }
            send(push.jobs(), now);
            if (pushes.size() == push.jobs().size()) {
                nextTick = now + TICK_NANOS;
            }
        } else if (op instanceof Call call) {
            if (call.result().isDone()) {
                return; // the caller already gave up
            }
            calls.put(call.key(), call.result());
            if (!Sockets.trySend(sock, call.frames())) {
                calls.remove(call.key());
                call.result().completeExceptionally(new TimeoutException(
                        "could not queue a message for " + endpoint + " (send queue full: is the broker down?)"));
            }
        } else if (op instanceof Send send) {
            if (!Sockets.trySend(sock, send.frames())) {
                LOG.log(Level.WARNING, "send queue to {0} full; dropping a message", endpoint);
            }
        } else if (op instanceof Forget forget) {
            calls.remove(forget.key());
        } else {
            closing = true;
        }
    }

    /** Send jobs as PUSH messages of up to {@code batch} items; a full send queue leaves them for the next resend. */
    private void send(List<PendingPush> jobs, long now) {
        for (int start = 0; start < jobs.size(); start += batch) {
            List<PendingPush> chunk = jobs.subList(start, Math.min(jobs.size(), start + batch));
            List<byte[]> headers = new ArrayList<>(chunk.size());
            List<byte[]> bodies = new ArrayList<>(chunk.size());
            for (PendingPush p : chunk) {
                headers.add(p.header);
                bodies.add(p.body);
                p.lastSent = now;
            }
            if (!Sockets.trySend(sock, Codec.assemble(Wire.PUSH, headers, bodies))) {
                LOG.log(Level.DEBUG, "send queue to {0} full; {1} push(es) wait for a resend", endpoint, chunk.size());
            }
        }
    }

    /** Fail pushes past their timeout; resend those unconfirmed for pushResend (same ids: at-least-once). */
    private void tick(long now) {
        List<PendingPush> due = new ArrayList<>();
        Iterator<PendingPush> it = pushes.values().iterator();
        while (it.hasNext()) {
            PendingPush p = it.next();
            if (now - p.deadline >= 0) {
                it.remove();
                p.result.completeExceptionally(new TimeoutException("push " + p.id + " unconfirmed after "
                        + p.timeoutNanos / 1_000_000 + " ms (is the broker at " + endpoint + " up?)"));
            } else if (now - p.lastSent >= resendNanos) {
                due.add(p);
            }
        }
        if (!due.isEmpty()) {
            send(due, now);
        }
        nextTick = now + TICK_NANOS;
    }

    private void read() {
        for (int n = 0; n < DRAIN_MAX; n++) {
            List<byte[]> frames = Sockets.tryRecv(sock);
            if (frames == null) {
                return;
            }
            Message message;
            try {
                message = Codec.unpack(frames);
            } catch (ProtocolException e) {
                LOG.log(Level.WARNING, "dropping a malformed message from the broker: {0}", e.getMessage());
                continue; // never answer garbage
            }
            dispatch(message);
        }
    }

    @SuppressWarnings("unchecked")
    private void dispatch(Message message) {
        switch (message.command()) {
            case Wire.CONFIRM:
                for (Object id : (List<Object>) message.header().get("ids")) {
                    PendingPush p = pushes.remove((String) id);
                    if (p != null) {
                        p.result.complete(p.id);
                    }
                }
                break;
            case Wire.REPLY:
                for (Item item : message.items()) {
                    CompletableFuture<Item> f = calls.remove((String) item.header().get("re"));
                    if (f != null) {
                        f.complete(item);
                    }
                }
                break;
            case Wire.ERROR: {
                Map<String, Object> header = message.header();
                String re = (String) header.get("re");
                PendingPush p = re == null ? null : pushes.remove(re);
                CompletableFuture<Item> f = re == null || p != null ? null : calls.remove(re);
                if (p != null) {
                    p.result.completeExceptionally(Errors.fromHeader(header));
                } else if (f != null) {
                    f.completeExceptionally(Errors.fromHeader(header));
                } else if (re == null) {
                    LOG.log(Level.WARNING, "broker error {0}: {1}", header.get("code"), header.get("message"));
                }
                break;
            }
            case Wire.HEARTBEAT: {
                // A HEARTBEAT answers a ping; it names no call, so it answers every pending ping.
                Iterator<Map.Entry<String, CompletableFuture<Item>>> it = calls.entrySet().iterator();
                while (it.hasNext()) {
                    Map.Entry<String, CompletableFuture<Item>> e = it.next();
                    if (e.getKey().startsWith(PING_PREFIX)) {
                        it.remove();
                        e.getValue().complete(new Item(message.header(), new byte[0]));
                    }
                }
                break;
            }
            default:
                LOG.log(Level.DEBUG, "ignoring unexpected {0} from the broker", message.name());
        }
    }
}
