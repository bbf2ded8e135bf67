// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * {@link Client#pushMany}: its jobs go to the I/O thread {@code batch} at a time, each chunk
 * packed here as one PUSH_PACKED (or PUSH_BATCH) message, with at most {@code window} of them
 * unconfirmed; the first failure stops the sending, and the outcome names every job.
 */
final class PushMany {
    private final IdGenerator ids;
    private final Consumer<ClientOp> submit;
    private final String endpoint;
    private final int window;
    private final int batch;

    PushMany(IdGenerator ids, Consumer<ClientOp> submit, String endpoint, int window, int batch) {
        this.ids = ids;
        this.submit = submit;
        this.endpoint = endpoint;
        this.window = window;
        this.batch = batch;
    }

    /**
     * The jobs' ids once all are confirmed; else the first error, with the accepted and unconfirmed
     * jobs. {@code fields} go in every message's header (at_ms: every job is scheduled).
     */
    List<String> push(String queue, List<byte[]> bodies, Map<String, ?> headers, Map<String, Object> fields,
            Duration timeout) {
        BatchGroup group = new BatchGroup(queue, headers, fields);
        List<String> jobIds = new ArrayList<>(bodies.size());
        for (int i = 0; i < bodies.size(); i++) {
            jobIds.add(ids.next());
        }
        List<CompletableFuture<String>> sent = new ArrayList<>(bodies.size());
        Deque<CompletableFuture<String>> unconfirmed = new ArrayDeque<>();
        ZeromeshException first = null;
        while (sent.size() < bodies.size() && first == null) {
            while (unconfirmed.size() > window - batch && first == null) {
                first = Waits.settle(unconfirmed.removeFirst(), timeout);
            }
            if (first != null) {
                break;
            }
            int next = sent.size();
            int end = Math.min(bodies.size(), next + batch);
            List<PendingPush> chunk = new ArrayList<>(end - next);
            for (int i = next; i < end; i++) {
                chunk.add(new PendingPush(jobIds.get(i), null, group, bodies.get(i), timeout.toNanos()));
            }
            List<String> chunkIds = jobIds.subList(next, end);
            List<byte[]> chunkBodies = bodies.subList(next, end);
            String batchId = ids.next();
            // Packed here, so a header the wire cannot carry fails this call, not the I/O thread.
            int command = Wire.PUSH_PACKED;
            byte[] header = group.packedHeader(batchId, chunkIds, chunkBodies);
            if (header == null) { // over 1 MiB of bodies (or a packed header over 64 KiB): a frame each
                command = Wire.PUSH_BATCH;
                header = Codec.packHeader(group.batchHeader(batchId, chunkIds));
            }
            chunk.forEach(p -> {
                unconfirmed.addLast(p.result);
                sent.add(p.result);
            });
            submit.accept(new ClientOp.Push(chunk, batchId, command, header));
        }
        while (!unconfirmed.isEmpty()) {
            ZeromeshException e = Waits.settle(unconfirmed.removeFirst(), timeout);
            first = first == null ? e : first;
        }
        if (first == null) {
            return jobIds;
        }
        throw outcome(first, jobIds, bodies, sent);
    }

    /** The first error with {@code getAccepted()} and {@code getUnconfirmed()} naming every job, in order. */
    private ZeromeshException outcome(ZeromeshException first, List<String> jobIds, List<byte[]> bodies,
            List<CompletableFuture<String>> sent) {
        List<String> accepted = new ArrayList<>();
        List<UnconfirmedJob> unconfirmed = new ArrayList<>();
        for (int i = 0; i < bodies.size(); i++) {
            CompletableFuture<String> f = i < sent.size() ? sent.get(i) : null;
            if (f != null && f.isDone() && !f.isCompletedExceptionally()) {
                accepted.add(jobIds.get(i));
            } else {
                unconfirmed.add(new UnconfirmedJob(jobIds.get(i), bodies.get(i)));
            }
        }
        if (first instanceof UnreachableException) {
            first = UnreachableException.pushes(endpoint, unconfirmed.size());
        }
        return first.withPushOutcome(accepted, unconfirmed);
    }
}
