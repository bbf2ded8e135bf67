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
import java.util.function.IntFunction;
import java.util.function.LongPredicate;
import java.util.function.Supplier;
import java.util.function.Predicate;

/**
 * The pushes the client's I/O thread has taken and the broker has not settled: it sends them,
 * matches CONFIRMs and ERRORs to them (by job id, or by PUSH_PACKED / PUSH_BATCH message id),
 * resends them every {@code pushResend} and fails them after their timeout or when the broker
 * stays unreachable. Confined to the I/O thread, like all of {@link ClientIO}'s state.
 *
 * <p>Jobs of a {@link BatchGroup} go as PUSH_PACKED (SPEC.md 3.5), or as PUSH_BATCH (3.4) when
 * their bodies exceed {@link Wire#MAX_PACKED_BYTES}: a resend carries the same job ids under a new
 * message id, in the form batch jobs go in now. A broker that answers a message with
 * unknown_command does not know the form it went in: from then on batch jobs go in the next form
 * ({@link #FORMS}; PUSH_PACKED to a broker older than revision 4, then PUSH_BATCH to one older than
 * revision 2), never further, and that message's jobs go again at once.
 */
final class PushTracker {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.client");
    /** The forms a message of batch jobs can take, the cheapest first; each broker revision knows a longer prefix. */
    static final List<Integer> FORMS = List.of(Wire.PUSH_PACKED, Wire.PUSH_BATCH, Wire.PUSH);

    /** The form a batch message went in, and its jobs. */
    private record SentBatch(int command, List<String> jobIds) {}

    /** Sends one message without blocking; false when the send queue is full. */
    private final Predicate<List<byte[]>> send;
    /** The broker in use, for messages (a client with several brokers moves between them). */
    private String endpoint;
    private IntFunction<UnreachableException> unreachableError;
    private final long resendNanos;
    private final int batch;
    private final IdGenerator ids;

    private final Map<String, PendingPush> pushes = new LinkedHashMap<>();
    /**
     * PUSH_PACKED / PUSH_BATCH message id -> the form it went in and its job ids, until CONFIRM
     * batches names it or its jobs are settled.
     */
    private final Map<String, SentBatch> batchesSent = new HashMap<>();
    /** The form batch jobs go in ({@link #FORMS}): steps down when the broker refuses one with unknown_command. */
    private int pushForm = FORMS.get(0);

    /**
     * {@code ids} names resent PUSH_PACKED and PUSH_BATCH messages; it must be the one that names
     * the jobs, so the two never meet.
     */
    PushTracker(Predicate<List<byte[]>> send, String endpoint, long resendNanos, int batch, IdGenerator ids) {
        this.send = send;
        this.endpoint = endpoint;
        this.unreachableError = n -> UnreachableException.pushes(this.endpoint, n);
        this.resendNanos = resendNanos;
        this.batch = batch;
        this.ids = ids;
    }

    /** The broker now in use (after a move to another one). */
    void endpoint(String endpoint) {
        this.endpoint = endpoint;
    }

    /** The error of pushes found unreachable, given how many jobs it fails (one at a time). */
    void unreachableError(IntFunction<UnreachableException> unreachableError) {
        this.unreachableError = unreachableError;
    }

    /** Send every unconfirmed push again now, same job ids: the client moved to another broker. */
    void resendAll(long now) {
        if (!pushes.isEmpty()) {
            batchesSent.clear(); // the new broker never saw those message ids; CONFIRM names the new ones
            send(new ArrayList<>(pushes.values()), now);
        }
    }

    boolean isEmpty() {
        return pushes.isEmpty();
    }

    /** Track and send the jobs of a caller's push. */
    void take(ClientOp.Push push, long now) {
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
    }

    /**
     * Fail pushes past their timeout, and those {@code unreachableSince} says had no live
     * connection to the broker for the connect timeout since they were taken (it is given that
     * time); resend pushes unconfirmed for pushResend (same ids: at-least-once).
     */
    void tick(long now, LongPredicate unreachableSince) {
        List<PendingPush> due = new ArrayList<>();
        Iterator<PendingPush> it = pushes.values().iterator();
        while (it.hasNext()) {
            PendingPush p = it.next();
            if (unreachableSince.test(p.since)) {
                it.remove();
                p.fail(unreachableError.apply(1));
            } else if (now - p.deadline >= 0) {
                it.remove();
                p.fail(new ZeromeshTimeoutException("push " + p.id + " unconfirmed after "
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
    }

    /**
     * A CONFIRM: its job ids, and each job of the PUSH_PACKED / PUSH_BATCH messages it names (SPEC.md 6).
     * A unique push that CONFIRM's {@code duplicates} names queued nothing: its push completes
     * with the id of the job that holds its key.
     */
    @SuppressWarnings("unchecked")
    void confirmed(Map<String, Object> header) {
        Map<Object, Object> duplicates = header.get("duplicates") instanceof Map<?, ?> m
                ? (Map<Object, Object>) m : Map.of();
        for (Object id : (List<Object>) header.get("ids")) {
            Object holder = duplicates.get(id);
            confirm((String) id, holder instanceof String h ? h : (String) id);
        }
        Object batches = header.get("batches");
        if (batches != null) {
            for (Object batchId : (List<Object>) batches) {
                SentBatch sent = batchesSent.remove((String) batchId);
                if (sent != null) {
                    sent.jobIds().forEach(id -> confirm(id, id));
                }
            }
        }
        forgetBatchesWhenSettled();
    }

    /** An ERROR whose re is {@code re}: true when it refused one of these pushes or batch messages. */
    boolean refused(String re, Map<String, Object> error) {
        SentBatch sent = batchesSent.remove(re);
        if (sent != null) {
            refusedBatch(sent, error);
        } else {
            PendingPush p = pushes.remove(re);
            if (p == null) {
                return false;
            }
            p.fail(Errors.fromHeader(error));
        }
        forgetBatchesWhenSettled();
        return true;
    }

    /** Fail every push still pending (the client closes). */
    void failAll(ZeromeshException e) {
        pushes.values().forEach(p -> p.fail(e));
        pushes.clear();
    }

    /** Fail every push still pending, each with an exception of its own (it carries that push's outcome). */
    void failAll(Supplier<ZeromeshException> error) {
        pushes.values().forEach(p -> p.fail(error.get()));
        pushes.clear();
    }

    /** Settle {@code jobId}'s push: its call returns {@code resultId} (the holder's id for a duplicate). */
    private void confirm(String jobId, String resultId) {
        PendingPush p = pushes.remove(jobId);
        if (p != null) {
            p.result.complete(resultId);
        }
    }

    private void forgetBatchesWhenSettled() {
        if (pushes.isEmpty() && !batchesSent.isEmpty()) {
            batchesSent.clear(); // every job settled: no batch will be named again
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
            p.fail(Errors.fromHeader(error));
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
            if (!headers.isEmpty() && !send.test(Codec.assemble(Wire.PUSH, headers, bodies))) {
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
        if (!send.test(frames)) {
            LOG.log(Level.DEBUG, "send queue to {0} full; {1} push(es) wait for a resend", endpoint, chunk.size());
        }
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
                p.fail(new ZeromeshException(Wire.E_BAD_HEADER, e.getMessage()));
            }
            return null;
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
}
