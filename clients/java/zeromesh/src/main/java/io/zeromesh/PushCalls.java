// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The work-queue calls of {@link Client}: push, pushAsync and pushMany in all their forms, each
 * checked here and handed to the client's I/O thread (one job as a {@link PendingPush}, many
 * through {@link PushMany}). Apart from Client, so that it stays small, as {@link AdminCalls} is.
 */
abstract class PushCalls extends AdminCalls {
    /** The client's id generator (job and message ids). */
    abstract IdGenerator ids();

    /** The caller's side of the client's I/O thread. */
    abstract ClientCalls calls();

    /** The broker endpoint (or list), for error messages. */
    abstract String endpoint();

    /** Refuse a missing body, or one larger than the client's maxBody, before sending. */
    abstract void checkBody(byte[] body);

    /** {@link #push(String, byte[], Map, Duration)} without headers, with the default timeout. */
    public String push(String queue, byte[] body) {
        return push(queue, body, null, Defaults.PUSH_TIMEOUT);
    }

    /**
     * Queue one job and wait until the broker confirms it; returns the job id. While unconfirmed
     * the same job (same id) is sent again every pushResend (2 s), e.g. across a broker restart.
     *
     * @throws QueueFullException       the queue is full
     * @throws ZeromeshTimeoutException unconfirmed after {@code timeout}
     * @throws UnreachableException     no connection to the broker for the connect timeout
     * @throws RemoteException          refused for another reason (too_large, shutting_down, ...)
     */
    public String push(String queue, byte[] body, Map<String, ?> headers, Duration timeout) {
        return Waits.get(pushAsync(queue, body, headers, timeout), timeout.plusSeconds(5));
    }

    /** {@link #pushAsync(String, byte[], Map, Duration)} without headers, with the default timeout. */
    public CompletableFuture<String> pushAsync(String queue, byte[] body) {
        return pushAsync(queue, body, null, Defaults.PUSH_TIMEOUT);
    }

    /**
     * Queue one job without waiting: the future completes with the job id once confirmed, or
     * exceptionally as {@link #push(String, byte[], Map, Duration)} throws. Many pushAsync calls
     * in a row are pipelined.
     */
    public CompletableFuture<String> pushAsync(String queue, byte[] body, Map<String, ?> headers, Duration timeout) {
        return pushAsync(queue, body, headers, Map.of(), timeout);
    }

    /**
     * Queue one job as {@code options} say (headers, timeout, a delay or an instant, a unique key)
     * and wait until the broker confirms it. Returns its id; for a unique push whose key another
     * job holds, nothing was queued and the id returned is that job's. A scheduled job waits in
     * the broker's Redis from the confirm on. Throws as {@link #push(String, byte[], Map, Duration)}.
     */
    public String push(String queue, byte[] body, PushOptions options) {
        return Waits.get(pushAsync(queue, body, options), options.timeout().plusSeconds(5));
    }

    /** {@link #push(String, byte[], PushOptions)} without waiting: the future completes with that id. */
    public CompletableFuture<String> pushAsync(String queue, byte[] body, PushOptions options) {
        return pushAsync(queue, body, options.headers(), options.fields(System.currentTimeMillis()), options.timeout());
    }

    /** {@code fields}: what {@link PushOptions} add to the header; a unique key goes on PUSH alone (SPEC.md 16.6). */
    private CompletableFuture<String> pushAsync(String queue, byte[] body, Map<String, ?> headers,
            Map<String, Object> fields, Duration timeout) {
        Client.checkName("queue", queue);
        checkBody(body);
        // In a handler's thread the job joins the handled message's trace (Traces).
        PendingPush p = ClientFrames.push(ids().next(), queue, body, headers, Traces.fields(fields), timeout);
        calls().submit(new ClientOp.Push(List.of(p)));
        return p.result;
    }

    /** {@link #pushMany(String, List, Map, Duration)} without headers, with the default timeout. */
    public List<String> pushMany(String queue, List<byte[]> bodies) {
        return pushMany(queue, bodies, null, Defaults.PUSH_TIMEOUT);
    }

    /**
     * Queue many jobs, pipelined: up to 5000 unconfirmed at once, sent 250 per PUSH_PACKED message
     * (one header and one body frame for all of them), or per PUSH_BATCH message (one header, a
     * frame per body) when their bodies exceed 1 MiB. A broker that does not take PUSH_PACKED gets
     * PUSH_BATCH, and one that does not take PUSH_BATCH either gets PUSH. Unconfirmed jobs are sent
     * again with the same ids every pushResend, as {@link #push} does.
     * Returns their ids in order once all are confirmed. On the first failure (a refusal, a
     * timeout, an unreachable broker) nothing more is sent; once what was sent is settled, that
     * error is thrown, with {@link ZeromeshException#getAccepted()} (the ids confirmed: those
     * jobs stay queued) and {@link ZeromeshException#getUnconfirmed()} (id and body of every job
     * not confirmed, sent or not, in the order given: what to push again).
     */
    public List<String> pushMany(String queue, List<byte[]> bodies, Map<String, ?> headers, Duration timeout) {
        return pushMany(queue, bodies, headers, Map.of(), timeout);
    }

    /**
     * {@link #pushMany(String, List, Map, Duration)} with {@code options}' headers and timeout; a
     * delay or an instant schedules every job for then (one instant for all, fixed at this call).
     *
     * @throws IllegalArgumentException options with a unique key: that is for one job, use push
     */
    public List<String> pushMany(String queue, List<byte[]> bodies, PushOptions options) {
        if (options.uniqueKey() != null) {
            throw new IllegalArgumentException("a unique key is for one job: push them one by one");
        }
        return pushMany(queue, bodies, options.headers(), options.fields(System.currentTimeMillis()),
                options.timeout());
    }

    private List<String> pushMany(String queue, List<byte[]> bodies, Map<String, ?> headers,
            Map<String, Object> fields, Duration timeout) {
        Client.checkName("queue", queue);
        bodies.forEach(this::checkBody);
        return new PushMany(ids(), calls()::submit, endpoint(), Defaults.PUSH_WINDOW, Defaults.PUSH_BATCH)
                .push(queue, bodies, headers, Traces.fields(fields), timeout);
    }
}
