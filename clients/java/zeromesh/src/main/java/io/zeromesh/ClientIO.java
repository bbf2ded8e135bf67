// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
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
 * answers to the waiting futures (CONFIRM by job id or by PUSH_PACKED / PUSH_BATCH message id,
 * REPLY and ERROR by {@code re}), resends unconfirmed pushes every {@code pushResend} and fails
 * them after their timeout. All its state is confined to this thread.
 *
 * <p>Jobs of a {@link BatchGroup} go as PUSH_PACKED (SPEC.md 3.5), or as PUSH_BATCH (3.4) when
 * their bodies exceed {@link Wire#MAX_PACKED_BYTES}: a resend carries the same job ids under a new
 * message id, in the form batch jobs go in now. A broker that answers a message with
 * unknown_command does not know the form it went in: from then on batch jobs go in the next form
 * ({@link #FORMS}; PUSH_PACKED to a broker older than revision 4, then PUSH_BATCH to one older than
 * revision 2), never further, and that message's jobs go again at once.
 */
final class ClientIO implements Runnable {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.client");
    /** Resends and push timeouts are checked this often while pushes are pending. */
    private static final long TICK_NANOS = 100_000_000L;
    /** Messages read per wake-up before looking at the callers' ops again. */
    private static final int DRAIN_MAX = 1000;
    static final String PING_PREFIX = "ping:";
    /** The forms a message of batch jobs can take, the cheapest first; each broker revision knows a longer prefix. */
    static final List<Integer> FORMS = List.of(Wire.PUSH_PACKED, Wire.PUSH_BATCH, Wire.PUSH);

    sealed interface Op permits Push, Call, Send, Forget, Close {}

    /**
     * Jobs to push. Without a batch header they go as PUSH messages; with one (made by the caller
     * with {@link BatchGroup#packedHeader} or {@link Codec#packHeader}, naming {@code batchId} and
     * every job's id) as that {@code command}, PUSH_PACKED or PUSH_BATCH, unless batch jobs now go
     * in a later form.
     */
    record Push(List<PendingPush> jobs, String batchId, int command, byte[] batchHeader) implements Op {
        Push(List<PendingPush> jobs) {
            this(jobs, null, Wire.PUSH, null);
        }
    }

    /** Send frames and complete {@code result} with the REPLY (or ERROR) whose re is {@code key}. */
    record Call(String key, List<byte[]> frames, CompletableFuture<Item> result) implements Op {}

    /** Send frames; nothing answers them (PUBLISH, CANCEL). */
    record Send(List<byte[]> frames) implements Op {}

    /** The caller gave up waiting for {@code key}. */
    record Forget(String key) implements Op {}

    record Close() implements Op {}

    /** What the jobs of one pushMany share: the fields of their PUSH_PACKED / PUSH_BATCH header but id, ids, sizes. */
    record BatchGroup(String queue, Map<String, ?> headers) {
        /**
         * The PUSH_PACKED header frame naming {@code jobIds} with the sizes of {@code bodies}, or
         * null when the bodies together exceed {@link Wire#MAX_PACKED_BYTES} or the header exceeds
         * {@link Wire#MAX_HEADER_BYTES}: then they go as PUSH_BATCH, whose header is smaller.
         *
         * @throws IllegalArgumentException for values msgpack cannot carry
         */
        byte[] packedHeader(String batchId, List<String> jobIds, List<byte[]> bodies) {
            List<Long> sizes = new ArrayList<>(bodies.size());
            long total = 0;
            for (byte[] body : bodies) {
                sizes.add((long) body.length);
                total += body.length;
            }
            if (total > Wire.MAX_PACKED_BYTES) {
                return null;
            }
            Map<String, Object> header = batchHeader(batchId, jobIds);
            header.put("sizes", sizes);
            byte[] raw = Msgpack.write(header);
            return raw.length > Wire.MAX_HEADER_BYTES ? null : raw;
        }

        /** The PUSH_BATCH header naming {@code jobIds}. */
        Map<String, Object> batchHeader(String batchId, List<String> jobIds) {
            Map<String, Object> header = new LinkedHashMap<>();
            header.put("id", batchId);
            header.put("queue", queue);
            header.put("ids", jobIds);
            if (headers != null && !headers.isEmpty()) {
                header.put("headers", headers);
            }
            return header;
        }

        /** The PUSH header of one job, for a broker that does not take PUSH_BATCH. */
        Map<String, Object> pushHeader(String jobId) {
            Map<String, Object> header = new LinkedHashMap<>();
            header.put("id", jobId);
            header.put("queue", queue);
            if (headers != null && !headers.isEmpty()) {
                header.put("headers", headers);
            }
            return header;
        }
    }

    /** One job until the broker confirms or refuses it. */
    static final class PendingPush {
        final String id;
        /** Its PUSH header; for a batch job null until it must go as PUSH. */
        byte[] header;
        final BatchGroup group;
        final byte[] body;
        final long timeoutNanos;
        final CompletableFuture<String> result = new CompletableFuture<>();
        /** When the I/O thread took it: an unreachable broker fails it connectTimeout after. */
        long since;
        long deadline;
        long lastSent;

        PendingPush(String id, byte[] header, byte[] body, long timeoutNanos) {
            this(id, header, null, body, timeoutNanos);
        }

        PendingPush(String id, byte[] header, BatchGroup group, byte[] body, long timeoutNanos) {
            this.id = id;
            this.header = header;
            this.group = group;
            this.body = body;
            this.timeoutNanos = timeoutNanos;
        }
    }

    private final ZContext ctx;
    private final String endpoint;
    private final long resendNanos;
    private final int batch;
    private final IdGenerator ids;
    final Outbox<Op> outbox;
    final CountDownLatch started = new CountDownLatch(1);
    final CountDownLatch done = new CountDownLatch(1);

    private final Map<String, PendingPush> pushes = new LinkedHashMap<>();
    private final Map<String, PendingCall> calls = new HashMap<>();
    /**
     * PUSH_PACKED / PUSH_BATCH message id -> the form it went in and its job ids, until CONFIRM
     * batches names it or its jobs are settled.
     */
    private final Map<String, SentBatch> batchesSent = new HashMap<>();
    /** The form batch jobs go in ({@link #FORMS}): steps down when the broker refuses one with unknown_command. */
    private int pushForm = FORMS.get(0);
    private final long lingerMs;
    private final long connectTimeoutNanos;
    private ZMQ.Socket sock;
    private ConnectionMonitor monitor;
    private boolean closing;
    private long nextTick;

    /** A call waiting for its answer since the I/O thread took it. */
    private record PendingCall(CompletableFuture<Item> future, long since) {}

    /** The form a batch message went in, and its jobs. */
    private record SentBatch(int command, List<String> jobIds) {}

    /**
     * {@code ids} names resent PUSH_PACKED and PUSH_BATCH messages; it must be the one that names
     * the jobs, so the two never meet.
     */
    ClientIO(ZContext ctx, String endpoint, long resendNanos, int batch, IdGenerator ids, Outbox<Op> outbox,
            long lingerMs, long connectTimeoutNanos) {
        this.ctx = ctx;
        this.lingerMs = lingerMs;
        this.connectTimeoutNanos = connectTimeoutNanos;
        this.endpoint = endpoint;
        this.resendNanos = resendNanos;
        this.batch = batch;
        this.ids = ids;
        this.outbox = outbox;
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
                boolean waiting = !pushes.isEmpty() || !calls.isEmpty();
                long timeoutMs = waiting ? Math.max(0, (nextTick - System.nanoTime()) / 1_000_000) + 1 : -1;
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
                for (Op op : outbox.take()) {
                    handle(op);
                }
                long now = System.nanoTime();
                if ((!pushes.isEmpty() || !calls.isEmpty()) && now - nextTick >= 0) {
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
            pushes.values().forEach(p -> fail(p, new ZeromeshException("closed", "the client is closed")));
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

    private void handle(Op op) {
        if (op instanceof Push push) {
            long now = System.nanoTime();
            for (PendingPush p : push.jobs()) {
                p.since = now;
                p.deadline = now + p.timeoutNanos;
                pushes.put(p.id, p);
            }
            if (push.batchId() != null && FORMS.indexOf(push.command()) >= FORMS.indexOf(pushForm)) {
                sendBatch(push.command(), push.batchId(), push.batchHeader(), push.jobs(), now);
            } else {
                send(push.jobs(), now);
            }
            if (pushes.size() == push.jobs().size() && calls.isEmpty()) {
                nextTick = now + TICK_NANOS;
            }
        } else if (op instanceof Call call) {
            if (call.result().isDone()) {
                return; // the caller already gave up
            }
            long now = System.nanoTime();
            if (pushes.isEmpty() && calls.isEmpty()) {
                nextTick = now + TICK_NANOS;
            }
            calls.put(call.key(), new PendingCall(call.result(), now));
            if (!Sockets.trySend(sock, call.frames())) {
                calls.remove(call.key());
                call.result().completeExceptionally(new ZeromeshTimeoutException(
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

    /**
     * Send jobs: those of a batch group under new message ids in the form batch jobs go in now
     * (PUSH_PACKED, or PUSH_BATCH, or as PUSH), the others as PUSH, up to {@code batch} per
     * message. A full send queue leaves them for the next resend.
     */
    private void send(List<PendingPush> jobs, long now) {
        List<PendingPush> single = new ArrayList<>();
        Map<BatchGroup, List<PendingPush>> groups = new IdentityHashMap<>(); // one per pushMany call
        for (PendingPush p : jobs) {
            if (p.group == null || pushForm == Wire.PUSH) {
                single.add(p);
            } else {
                groups.computeIfAbsent(p.group, g -> new ArrayList<>()).add(p);
            }
        }
        for (Map.Entry<BatchGroup, List<PendingPush>> e : groups.entrySet()) {
            List<PendingPush> group = e.getValue();
            for (int start = 0; start < group.size(); start += batch) {
                List<PendingPush> chunk = group.subList(start, Math.min(group.size(), start + batch));
                String batchId = ids.next();
                byte[] header = pushForm == Wire.PUSH_PACKED
                        ? e.getKey().packedHeader(batchId, jobIds(chunk), bodies(chunk)) : null;
                if (header != null) {
                    sendBatch(Wire.PUSH_PACKED, batchId, header, chunk, now);
                    continue;
                }
                header = packOrFail(e.getKey().batchHeader(batchId, jobIds(chunk)), chunk);
                if (header != null) {
                    sendBatch(Wire.PUSH_BATCH, batchId, header, chunk, now);
                }
            }
        }
        for (int start = 0; start < single.size(); start += batch) {
            List<PendingPush> chunk = single.subList(start, Math.min(single.size(), start + batch));
            List<byte[]> headers = new ArrayList<>(chunk.size());
            List<byte[]> bodies = new ArrayList<>(chunk.size());
            for (PendingPush p : chunk) {
                if (p.header == null) {
                    p.header = packOrFail(p.group.pushHeader(p.id), List.of(p));
                    if (p.header == null) {
                        continue;
                    }
                }
                headers.add(p.header);
                bodies.add(p.body);
                p.lastSent = now;
            }
            if (!headers.isEmpty() && !Sockets.trySend(sock, Codec.assemble(Wire.PUSH, headers, bodies))) {
                LOG.log(Level.DEBUG, "send queue to {0} full; {1} push(es) wait for a resend", endpoint, headers.size());
            }
        }
    }

    /** One PUSH_PACKED or PUSH_BATCH message; {@code header} names {@code batchId} and the chunk's jobs. */
    private void sendBatch(int command, String batchId, byte[] header, List<PendingPush> chunk, long now) {
        List<byte[]> bodies = bodies(chunk);
        for (PendingPush p : chunk) {
            p.lastSent = now;
        }
        batchesSent.put(batchId, new SentBatch(command, jobIds(chunk)));
        List<byte[]> frames = command == Wire.PUSH_PACKED
                ? Codec.assemblePacked(command, header, bodies) : Codec.assembleBatch(command, header, bodies);
        if (!Sockets.trySend(sock, frames)) {
            LOG.log(Level.DEBUG, "send queue to {0} full; {1} push(es) wait for a resend", endpoint, chunk.size());
        }
    }

    private static List<byte[]> bodies(List<PendingPush> jobs) {
        List<byte[]> bodies = new ArrayList<>(jobs.size());
        for (PendingPush p : jobs) {
            bodies.add(p.body);
        }
        return bodies;
    }

    private static List<String> jobIds(List<PendingPush> jobs) {
        List<String> jobIds = new ArrayList<>(jobs.size());
        for (PendingPush p : jobs) {
            jobIds.add(p.id);
        }
        return jobIds;
    }

    /**
     * A header made here rather than by the caller (a resend, a fallback to a later form). The
     * caller packed these fields once already, so this fails only if the header grew past 64 KiB;
     * then the jobs fail rather than wait for their timeout.
     */
    private byte[] packOrFail(Map<String, Object> header, List<PendingPush> jobs) {
        try {
            return Codec.packHeader(header);
        } catch (IllegalArgumentException e) {
            for (PendingPush p : jobs) {
                pushes.remove(p.id);
                fail(p, new ZeromeshException(Wire.E_BAD_HEADER, e.getMessage()));
            }
            return null;
        }
    }

    /**
     * Fail pushes past their timeout, and pushes and calls that had no live connection to the
     * broker for connectTimeout; resend pushes unconfirmed for pushResend (same ids: at-least-once).
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
        List<PendingPush> due = new ArrayList<>();
        Iterator<PendingPush> it = pushes.values().iterator();
        while (it.hasNext()) {
            PendingPush p = it.next();
            if (monitor.unreachable(p.since, now, connectTimeoutNanos)) {
                it.remove();
                fail(p, UnreachableException.pushes(endpoint, 1));
            } else if (now - p.deadline >= 0) {
                it.remove();
                fail(p, new ZeromeshTimeoutException("push " + p.id + " unconfirmed after "
                        + p.timeoutNanos / 1_000_000 + " ms (is the broker at " + endpoint + " up?)"));
            } else if (now - p.lastSent >= resendNanos) {
                due.add(p);
            }
        }
        if (!due.isEmpty()) {
            send(due, now);
        }
        // Batches the broker confirmed job by job (or refused) are never named again: forget them.
        batchesSent.values().removeIf(sent -> {
            for (String id : sent.jobIds()) {
                if (pushes.containsKey(id)) {
                    return false;
                }
            }
            return true;
        });
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
            case Wire.CONFIRM: {
                for (Object id : (List<Object>) message.header().get("ids")) {
                    confirm((String) id);
                }
                // A PUSH_PACKED or PUSH_BATCH message id confirms each job id it carried (SPEC.md 6, CONFIRM).
                Object batches = message.header().get("batches");
                if (batches != null) {
                    for (Object batchId : (List<Object>) batches) {
                        SentBatch sent = batchesSent.remove((String) batchId);
                        if (sent != null) {
                            sent.jobIds().forEach(this::confirm);
                        }
                    }
                }
                break;
            }
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
                if (re != null && batchesSent.containsKey(re)) {
                    refusedBatch(batchesSent.remove(re), header);
                    break;
                }
                PendingPush p = re == null ? null : pushes.remove(re);
                PendingCall c = re == null || p != null ? null : calls.remove(re);
                if (p != null) {
                    fail(p, Errors.fromHeader(header));
                } else if (c != null) {
                    c.future().completeExceptionally(Errors.fromHeader(header));
                } else if (re == null) {
                    LOG.log(Level.WARNING, "broker error {0}: {1}", header.get("code"), header.get("message"));
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
        if (pushes.isEmpty() && !batchesSent.isEmpty()) {
            batchesSent.clear(); // every job settled: no batch will be named again
        }
    }

    private void confirm(String jobId) {
        PendingPush p = pushes.remove(jobId);
        if (p != null) {
            p.result.complete(p.id);
        }
    }

    /**
     * An ERROR naming a PUSH_PACKED or PUSH_BATCH message refuses it whole. unknown_command: a
     * broker that does not know the form it went in (older than revision 4 or 2); batch jobs go in
     * the form after that one from now on (unless they already go in a later one: several
     * refusals of one form step down once), and its jobs go again at once. Any other code fails
     * every job of it still pending.
     */
    private void refusedBatch(SentBatch sent, Map<String, Object> error) {
        List<PendingPush> pending = new ArrayList<>(sent.jobIds().size());
        for (String id : sent.jobIds()) {
            PendingPush p = pushes.get(id);
            if (p != null) {
                pending.add(p);
            }
        }
        if (Wire.E_UNKNOWN_COMMAND.equals(error.get("code"))) {
            int next = FORMS.get(FORMS.indexOf(sent.command()) + 1);
            if (FORMS.indexOf(next) > FORMS.indexOf(pushForm)) {
                LOG.log(Level.INFO, "the broker at {0} does not take {1}; pushing as {2}", endpoint,
                        Wire.COMMAND_NAMES.get(sent.command()), Wire.COMMAND_NAMES.get(next));
                pushForm = next;
            }
            send(pending, System.nanoTime());
            return;
        }
        for (PendingPush p : pending) {
            pushes.remove(p.id);
            fail(p, Errors.fromHeader(error));
        }
    }

    /** Settle a push as failed; the exception (one per job) lists it as unconfirmed. */
    private static void fail(PendingPush p, ZeromeshException e) {
        p.result.completeExceptionally(e.withPushOutcome(List.of(), List.of(new UnconfirmedJob(p.id, p.body))));
    }
}
