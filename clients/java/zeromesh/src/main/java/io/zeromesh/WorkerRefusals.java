// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.util.List;

/**
 * A worker's refusals (SPEC.md 14.4): brokers that refuse its handshake, and a READY the broker
 * answers {@code forbidden}. A refused broker is logged at ERROR once (until it lets the worker
 * in) and tried again after a backoff, as a key may be added; once every broker of the list has
 * refused the worker for the connect timeout, or a READY is forbidden, the worker gives up and
 * {@link Worker#run()} throws {@link #failure}. Owned by the worker's I/O thread.
 */
final class WorkerRefusals {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.worker");

    private final long connectTimeoutNanos;
    /** Why the worker gives up; null while it serves. */
    private ZeromeshException failure;

    WorkerRefusals(long connectTimeoutNanos) {
        this.connectTimeoutNanos = connectTimeoutNanos;
    }

    ZeromeshException failure() {
        return failure;
    }

    /** After reading {@code s}'s monitor: true when its broker refuses the handshake (replace the socket later). */
    boolean refused(WorkerSession s, long now) {
        String refusal = s.monitor.refusal(now);
        if (refusal == null) {
            return false;
        }
        if (s.refusal == null) {
            s.refusedSince = now;
        }
        if (!refusal.equals(s.refusal)) {
            LOG.log(Level.ERROR, "{0} (retrying)", refusal);
        }
        s.refusal = refusal;
        return true;
    }

    /** A message came from {@code s}'s broker: it let the worker in. */
    void received(WorkerSession s) {
        s.monitor.received();
        if (s.refusal != null) {
            LOG.log(Level.INFO, "the broker at {0} accepts this worker's key now", s.endpoint);
            s.refusal = null;
        }
    }

    /** A READY answered forbidden: the worker may not serve those names with its key. */
    void forbidden(WorkerSession s, Object message) {
        LOG.log(Level.ERROR, "the broker at {0} refused this worker''s READY: {1}", s.endpoint, message);
        failure = new ForbiddenException(String.valueOf(message));
    }

    /** True once the worker must give up: a forbidden READY, or every broker refusing it for the connect timeout. */
    boolean givingUp(List<WorkerSession> sessions, long now) {
        if (failure != null) {
            return true;
        }
        for (WorkerSession s : sessions) {
            if (s.refusal == null || now - s.refusedSince < connectTimeoutNanos) {
                return false;
            }
        }
        String message = sessions.get(0).refusal;
        LOG.log(Level.ERROR, "every broker refuses this worker''s handshake; stopping: {0}", message);
        failure = new AuthenticationException(message);
        return true;
    }
}
