// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * The client's I/O thread: the only code that touches the client's DEALER.
 *
 * <p>Callers hand it {@link ClientOp}s through an {@link Outbox}; it sends them and matches the
 * broker's answers to the waiting futures: pushes through its {@link PushTracker} (CONFIRM, and
 * the resends and timeouts of unconfirmed pushes), calls here (REPLY and ERROR by {@code re},
 * HEARTBEAT for pings). All its state is confined to this thread.
 */
final class ClientIO implements Runnable {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.client");
    /** Resends and push timeouts are checked this often while pushes are pending. */
    private static final long TICK_NANOS = 100_000_000L;
    /** Messages read per wake-up before looking at the callers' ops again. */
    private static final int DRAIN_MAX = 1000;
    static final String PING_PREFIX = "ping:";

    /** A call waiting for its answer since the I/O thread took it. */
    private record PendingCall(CompletableFuture<Item> future, long since) {}

    private final ZContext ctx;
    private final String endpoint;
    private final long lingerMs;
    private final long connectTimeoutNanos;
    final Outbox<ClientOp> outbox;
    final CountDownLatch started = new CountDownLatch(1);
    final CountDownLatch done = new CountDownLatch(1);

    private final PushTracker pushes;
    private final Map<String, PendingCall> calls = new HashMap<>();
    private ZMQ.Socket sock;
    private ConnectionMonitor monitor;
    private boolean closing;
    private long nextTick;

    /**
     * {@code ids} names resent PUSH_PACKED and PUSH_BATCH messages; it must be the one that names
     * the jobs, so the two never meet.
     */
    ClientIO(ZContext ctx, String endpoint, long resendNanos, int batch, IdGenerator ids, Outbox<ClientOp> outbox,
            long lingerMs, long connectTimeoutNanos) {
        this.ctx = ctx;
        this.endpoint = endpoint;
        this.lingerMs = lingerMs;
        this.connectTimeoutNanos = connectTimeoutNanos;
        this.outbox = outbox;
        this.pushes = new PushTracker(frames -> Sockets.trySend(sock, frames), endpoint, resendNanos, batch, ids);
    }

    @Override
    public void run() {
        ZMQ.Socket pull = null;
        ZMQ.Poller poller = null;
        try {
            pull = outbox.open();
            sock = Sockets.dealer(ctx);
            monitor = new ConnectionMonitor(ctx, sock, System.nanoTime());
            sock.connect(endpoint);
            poller = ctx.createPoller(3);
            int pullIndex = poller.register(pull, ZMQ.Poller.POLLIN);
            int sockIndex = poller.register(sock, ZMQ.Poller.POLLIN);
            int monitorIndex = poller.register(monitor.socket(), ZMQ.Poller.POLLIN);
            started.countDown();
            while (!closing) {
                long timeoutMs = waiting() ? Math.max(0, (nextTick - System.nanoTime()) / 1_000_000) + 1 : -1;
                poller.poll(timeoutMs);
                if (poller.pollin(monitorIndex)) {
                    monitor.read(System.nanoTime());
                }
                if (poller.pollin(pullIndex)) {
                    Outbox.drain(pull); // before take(): see Outbox
                }
                if (poller.pollin(sockIndex)) {
                    read();
                }
                for (ClientOp op : outbox.take()) {
                    handle(op);
                }
                long now = System.nanoTime();
                if (waiting() && now - nextTick >= 0) {
                    tick(now);
                }
            }
            for (ClientOp op : outbox.close()) { // what callers queued before close(): a last publish goes out
                handle(op);
            }
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "client I/O thread failed", e);
        } finally {
            outbox.close();
            pushes.failAll(new ZeromeshException("closed", "the client is closed"));
            calls.values().forEach(c -> c.future().completeExceptionally(
                    new ZeromeshException("closed", "the client is closed")));
            if (poller != null) {
                poller.close();
            }
            if (sock != null) {
                // What was sent (a last publish, pushes) leaves within the linger; the context's
                // termination waits for it.
                sock.setLinger((int) Math.min(Integer.MAX_VALUE, lingerMs));
                sock.close();
            }
            if (monitor != null) {
                monitor.close();
            }
            if (pull != null) {
                pull.close();
            }
            started.countDown();
            done.countDown();
        }
    }

    /** Whether a push or a call waits for the broker (then the loop ticks). */
    private boolean waiting() {
        return !pushes.isEmpty() || !calls.isEmpty();
    }

    private void handle(ClientOp op) {
        if (op instanceof ClientOp.Push push) {
            long now = System.nanoTime();
            if (!waiting()) {
                nextTick = now + TICK_NANOS;
            }
            pushes.take(push, now);
        } else if (op instanceof ClientOp.Call call) {
            if (call.result().isDone()) {
                return; // the caller already gave up
            }
            long now = System.nanoTime();
            if (!waiting()) {
                nextTick = now + TICK_NANOS;
            }
            calls.put(call.key(), new PendingCall(call.result(), now));
            if (!Sockets.trySend(sock, call.frames())) {
                calls.remove(call.key());
                call.result().completeExceptionally(new ZeromeshTimeoutException(
                        "could not queue a message for " + endpoint + " (send queue full: is the broker down?)"));
            }
        } else if (op instanceof ClientOp.Send send) {
            if (!Sockets.trySend(sock, send.frames())) {
                LOG.log(Level.WARNING, "send queue to {0} full; dropping a message", endpoint);
            }
        } else if (op instanceof ClientOp.Forget forget) {
            calls.remove(forget.key());
        } else {
            closing = true;
        }
    }

    /**
     * Fail calls that had no live connection to the broker for connectTimeout; then the pushes'
     * timeouts, unreachability and resends ({@link PushTracker#tick}).
     */
    private void tick(long now) {
        if (!monitor.live()) {
            Iterator<PendingCall> calling = calls.values().iterator();
            while (calling.hasNext()) {
                PendingCall c = calling.next();
                if (monitor.unreachable(c.since(), now, connectTimeoutNanos)) {
                    calling.remove();
                    c.future().completeExceptionally(UnreachableException.call(endpoint, connectTimeoutNanos / 1_000_000));
                }
            }
        }
        pushes.tick(now, since -> monitor.unreachable(since, now, connectTimeoutNanos));
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

    private void dispatch(Message message) {
        switch (message.command()) {
            case Wire.CONFIRM:
                pushes.confirmed(message.header());
                break;
            case Wire.REPLY:
                for (Item item : message.items()) {
                    PendingCall c = calls.remove((String) item.header().get("re"));
                    if (c != null) {
                        c.future().complete(item);
                    }
                }
                break;
            case Wire.ERROR: {
                Map<String, Object> header = message.header();
                String re = (String) header.get("re");
                if (re == null) {
                    LOG.log(Level.WARNING, "broker error {0}: {1}", header.get("code"), header.get("message"));
                } else if (!pushes.refused(re, header)) {
                    PendingCall c = calls.remove(re);
                    if (c != null) {
                        c.future().completeExceptionally(Errors.fromHeader(header));
                    }
                }
                break;
            }
            case Wire.HEARTBEAT: {
                // A HEARTBEAT answers a ping; it names no call, so it answers every pending ping.
                Iterator<Map.Entry<String, PendingCall>> it = calls.entrySet().iterator();
                while (it.hasNext()) {
                    Map.Entry<String, PendingCall> e = it.next();
                    if (e.getKey().startsWith(PING_PREFIX)) {
                        it.remove();
                        e.getValue().future().complete(new Item(message.header(), new byte[0]));
                    }
                }
                break;
            }
            default:
                LOG.log(Level.DEBUG, "ignoring unexpected {0} from the broker", message.name());
        }
    }
}
