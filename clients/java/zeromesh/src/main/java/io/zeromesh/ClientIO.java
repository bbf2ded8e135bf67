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
 *
 * <p>With several brokers it uses one at a time through its {@link BrokerLink}. When the link
 * moves to another broker, unconfirmed pushes go to the new one at once under the same job ids
 * (its dedupe applies), and calls in flight on the lost one fail as unreachable: the old broker
 * may have run them. Idempotent requests are the exception: they go again under a new id.
 *
 * <p>When the broker refuses the handshake (every broker of the list, with several), everything
 * waiting fails at once with {@link AuthenticationException}; the next call tries again.
 */
final class ClientIO implements Runnable {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.client");
    /** Resends, push timeouts and the link's failover are checked this often while something waits. */
    private static final long TICK_NANOS = 100_000_000L;
    /** Messages read per wake-up before looking at the callers' ops again. */
    private static final int DRAIN_MAX = 1000;
    static final String PING_PREFIX = "ping:";

    /** A call waiting for its answer since the I/O thread took it (or sent it again). */
    private static final class PendingCall {
        final CompletableFuture<Item> future;
        final ClientOp.Again again;
        final long deadline;
        long since;
        /** What was sent, to send it as it is to the next broker if the last one never had it. */
        List<byte[]> frames;
        /** The id its answer names: the caller's key, or the new id it was sent again under. */
        String wireId;

        PendingCall(ClientOp.Call call, long since) {
            this.future = call.result();
            this.again = call.again();
            this.deadline = call.deadline();
            this.since = since;
            this.wireId = call.key();
            this.frames = call.frames();
        }
    }

    private final ZContext ctx;
    private final List<String> endpoints;
    private final long lingerMs;
    private final long connectTimeoutNanos;
    private final long failoverNanos;
    private final CurveSettings curve;
    private final IdGenerator ids;
    final Outbox<ClientOp> outbox;
    final CountDownLatch started = new CountDownLatch(1);
    final CountDownLatch done = new CountDownLatch(1);

    private final PushTracker pushes;
    /** Calls by the caller's key. */
    private final Map<String, PendingCall> calls = new HashMap<>();
    /** Key of each call sent again under a new id, by that id. */
    private final Map<String, String> renamed = new HashMap<>();
    private BrokerLink link;
    /** The broker in use, for {@link Client#currentBroker()} (written here, read by callers). */
    volatile String current;
    private ZMQ.Poller poller;
    private ZMQ.Socket pull;
    private int pullIndex;
    private int sockIndex;
    private int monitorIndex;
    private boolean closing;
    private long nextTick;

    /**
     * {@code ids} names resent PUSH_PACKED and PUSH_BATCH messages and requests sent again; it must
     * be the one that names the jobs, so the two never meet.
     */
    ClientIO(ZContext ctx, List<String> endpoints, CurveSettings curve, long resendNanos, int batch, IdGenerator ids,
            Outbox<ClientOp> outbox, long lingerMs, long connectTimeoutNanos, long failoverNanos) {
        this.ctx = ctx;
        this.curve = curve;
        this.endpoints = endpoints;
        this.lingerMs = lingerMs;
        this.connectTimeoutNanos = connectTimeoutNanos;
        this.failoverNanos = failoverNanos;
        this.ids = ids;
        this.outbox = outbox;
        this.pushes = new PushTracker(frames -> Sockets.trySend(link.socket(), frames), endpoints.get(0),
                resendNanos, batch, ids);
    }

    @Override
    public void run() {
        try {
            pull = outbox.open();
            link = new BrokerLink(ctx, endpoints, curve, failoverNanos, connectTimeoutNanos, System.nanoTime());
            pushes.endpoint(link.endpoint());
            current = link.endpoint();
            pushes.unreachableError(n -> link.error(n + " job(s) not confirmed"));
            poll();
            started.countDown();
            while (!closing) {
                long timeoutMs = ticking() ? Math.max(0, (nextTick - System.nanoTime()) / 1_000_000) + 1 : -1;
                poller.poll(timeoutMs);
                if (poller.pollin(monitorIndex)) {
                    link.readMonitor(System.nanoTime());
                    failRefused();
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
                if (ticking() && now - nextTick >= 0) {
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
            calls.values().forEach(c -> c.future.completeExceptionally(
                    new ZeromeshException("closed", "the client is closed")));
            if (poller != null) {
                poller.close();
            }
            if (link != null) {
                // What was sent (a last publish, pushes) leaves within the linger; the context's
                // termination waits for it.
                link.close(lingerMs);
            }
            if (pull != null) {
                pull.close();
            }
            started.countDown();
            done.countDown();
        }
    }

    /** A poller over the outbox doorbell and the link's current sockets (again after each move). */
    private void poll() {
        if (poller != null) {
            poller.close();
        }
        poller = ctx.createPoller(3);
        pullIndex = poller.register(pull, ZMQ.Poller.POLLIN);
        sockIndex = poller.register(link.socket(), ZMQ.Poller.POLLIN);
        monitorIndex = poller.register(link.monitorSocket(), ZMQ.Poller.POLLIN);
    }

    /** Whether a push or a call waits for the broker (then the loop ticks). */
    private boolean waiting() {
        return !pushes.isEmpty() || !calls.isEmpty();
    }

    /** Waiting, or down with other brokers to try: a client that only publishes moves on too. */
    private boolean ticking() {
        return waiting() || (link.several() && !link.live());
    }

    private void startTicking(long now) {
        if (!ticking()) {
            nextTick = now + TICK_NANOS;
        }
    }

    /** Everything waiting fails at once when the broker (every broker of the list) refuses the handshake. */
    private void failRefused() {
        AuthenticationException refused = link.allRefused();
        if (refused == null) {
            return;
        }
        String message = refused.getMessage();
        pushes.failAll(() -> new AuthenticationException(message));
        calls.values().forEach(c -> c.future.completeExceptionally(new AuthenticationException(message)));
        calls.clear();
        renamed.clear();
    }

    /** A new call to a broker that refused us: connect again, as a key may have been added since. */
    private void retryRefused(long now) {
        if (link.retryRefused(now)) {
            poll();
        }
    }

    private void handle(ClientOp op) {
        if (op instanceof ClientOp.Push push) {
            long now = System.nanoTime();
            retryRefused(now);
            startTicking(now);
            pushes.take(push, now);
        } else if (op instanceof ClientOp.Call call) {
            if (call.result().isDone()) {
                return; // the caller already gave up
            }
            long now = System.nanoTime();
            retryRefused(now);
            startTicking(now);
            calls.put(call.key(), new PendingCall(call, now));
            if (!Sockets.trySend(link.socket(), call.frames())) {
                calls.remove(call.key());
                call.result().completeExceptionally(new ZeromeshTimeoutException(
                        "could not queue a message for " + link.endpoint() + " (send queue full: is the broker down?)"));
            }
        } else if (op instanceof ClientOp.Send send) {
            retryRefused(System.nanoTime());
            if (!Sockets.trySend(link.socket(), send.frames())) {
                LOG.log(Level.WARNING, "send queue to {0} full; dropping a message", link.endpoint());
            }
        } else if (op instanceof ClientOp.Forget forget) {
            PendingCall c = calls.remove(forget.key());
            if (c != null) {
                renamed.remove(c.wireId);
            }
        } else {
            closing = true;
        }
    }

    /**
     * Move to the next broker when this one is down for its turn; then fail calls that had no
     * live connection for long enough ({@link BrokerLink#unreachable}), then the pushes' timeouts,
     * unreachability and resends ({@link PushTracker#tick}).
     */
    private void tick(long now) {
        link.readMonitor(now); // a refusal also shows by time passing (Handshakes)
        failRefused();
        if (link.moveIfDown(now)) {
            poll();
            pushes.endpoint(link.endpoint());
            current = link.endpoint();
            pushes.resendAll(now);
            callsLost(now);
        }
        if (!link.live()) {
            Iterator<PendingCall> calling = calls.values().iterator();
            while (calling.hasNext()) {
                PendingCall c = calling.next();
                if (link.unreachable(c.since, now)) {
                    calling.remove();
                    renamed.remove(c.wireId);
                    c.future.completeExceptionally(link.several()
                            ? link.error("no connection to any of them")
                            : UnreachableException.call(link.endpoint(), connectTimeoutNanos / 1_000_000));
                }
            }
        }
        pushes.tick(now, since -> link.unreachable(since, now));
        nextTick = now + TICK_NANOS;
    }

    /**
     * The broker was lost with these calls in flight: it may have run them, so they fail, unless
     * idempotent; those go to the new broker under a new id with what is left of their deadline.
     * A broker never connected during its turn had none of them: they all go to the next one as
     * they are (and fail once no broker of the list could be reached).
     */
    private void callsLost(long now) {
        String lost = link.lastEndpoint();
        Iterator<Map.Entry<String, PendingCall>> it = calls.entrySet().iterator();
        while (it.hasNext()) {
            Map.Entry<String, PendingCall> e = it.next();
            PendingCall c = e.getValue();
            if (!link.lastTurnLive()) {
                if (!Sockets.trySend(link.socket(), c.frames)) {
                    it.remove();
                    renamed.remove(c.wireId);
                    c.future.completeExceptionally(new ZeromeshTimeoutException("could not queue a message for "
                            + link.endpoint() + " (send queue full)"));
                }
                continue;
            }
            renamed.remove(c.wireId);
            long remainingMs = (c.deadline - now) / 1_000_000;
            if (c.again == null || remainingMs <= 0) {
                it.remove();
                c.future.completeExceptionally(new UnreachableException("broker " + lost
                        + " lost with the request in flight; not resent ("
                        + (c.again == null ? "not idempotent" : "its deadline passed") + ")"));
                continue;
            }
            c.wireId = ids.next();
            c.since = now;
            c.frames = c.again.frames(c.wireId, remainingMs);
            renamed.put(c.wireId, e.getKey());
            if (!Sockets.trySend(link.socket(), c.frames)) {
                it.remove();
                renamed.remove(c.wireId);
                c.future.completeExceptionally(new ZeromeshTimeoutException("could not queue a message for "
                        + link.endpoint() + " (send queue full)"));
            }
        }
    }

    /** The pending call a REPLY or ERROR names, removed from the pending ones; null if none. */
    private PendingCall answered(String re) {
        String key = renamed.remove(re);
        PendingCall c = calls.get(key != null ? key : re);
        if (c == null || !c.wireId.equals(re)) {
            return null; // forgotten, or an answer to an id it no longer waits under
        }
        calls.remove(key != null ? key : re);
        return c;
    }
    private void read() {
        for (int n = 0; n < DRAIN_MAX; n++) {
            List<byte[]> frames = Sockets.tryRecv(link.socket());
            if (frames == null) {
                return;
            }
            if (n == 0) {
                link.received();
            }
            Message message;
            try {
                message = Codec.unpack(frames);
            } catch (ProtocolException e) {
                LOG.log(Level.WARNING, "dropping a malformed message from {0}: {1}", link.endpoint(), e.getMessage());
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
                    PendingCall c = answered((String) item.header().get("re"));
                    if (c != null) {
                        c.future.complete(item);
                    }
                }
                break;
            case Wire.ERROR: {
                Map<String, Object> header = message.header();
                String re = (String) header.get("re");
                if (re == null) {
                    LOG.log(Level.WARNING, "broker error {0}: {1}", header.get("code"), header.get("message"));
                } else if (!pushes.refused(re, header)) {
                    PendingCall c = answered(re);
                    if (c != null) {
                        c.future.completeExceptionally(Errors.fromHeader(header));
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
                        renamed.remove(e.getValue().wireId);
                        e.getValue().future.complete(new Item(message.header(), new byte[0]));
                    }
                }
                break;
            }
            default:
                LOG.log(Level.DEBUG, "ignoring unexpected {0} from the broker", message.name());
        }
    }
}
