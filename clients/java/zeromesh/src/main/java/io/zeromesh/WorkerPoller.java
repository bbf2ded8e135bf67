// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.List;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * What the worker's I/O thread waits on, and until when: the outbox doorbell and every session's
 * current socket and its monitor, until the next heartbeat, a session's liveness limit, a reconnection that is due,
 * or the end of a stop's grace. Made again whenever a socket is replaced: unregistering one from a
 * jeromq Poller moves the others' indices.
 */
final class WorkerPoller {
    private final ZContext context;
    private final ZMQ.Socket pull;
    private final List<WorkerSession> sessions;
    private ZMQ.Poller poller;
    private int pullIndex;

    WorkerPoller(ZContext context, ZMQ.Socket pull, List<WorkerSession> sessions) {
        this.context = context;
        this.pull = pull;
        this.sessions = sessions;
        rebuild();
    }

    /** Register the doorbell and the sessions' current sockets again (after one was replaced). */
    void rebuild() {
        if (poller != null) {
            poller.close();
        }
        poller = context.createPoller(1 + 2 * sessions.size());
        pullIndex = poller.register(pull, ZMQ.Poller.POLLIN);
        for (WorkerSession s : sessions) {
            s.sockIndex = s.sock == null ? -1 : poller.register(s.sock, ZMQ.Poller.POLLIN);
            s.monitorIndex = s.sock == null ? -1 : poller.register(s.monitor.socket(), ZMQ.Poller.POLLIN);
        }
    }

    /**
     * Wait until something is readable or the first deadline passes: {@code nextBeat}, each
     * connected session's last message plus {@code livenessNanos}, each reconnection due, and
     * {@code stopDeadline} when not null.
     */
    void await(long now, long nextBeat, long livenessNanos, Long stopDeadline) {
        long wake = nextBeat;
        for (WorkerSession s : sessions) {
            if (s.sock != null) {
                wake = Math.min(wake, s.lastRecv + livenessNanos);
            }
            if (s.waitingToReconnect) {
                wake = Math.min(wake, s.reconnectAt);
            }
        }
        if (stopDeadline != null) {
            wake = Math.min(wake, stopDeadline);
        }
        poller.poll(Math.max(0, (wake - now) / 1_000_000) + 1);
    }

    /** The outbox rang during the last wait. */
    boolean doorbell() {
        return poller.pollin(pullIndex);
    }

    /** Session {@code s}'s current socket has messages (as of the last wait). */
    boolean readable(WorkerSession s) {
        return s.sock != null && s.sockIndex >= 0 && poller.pollin(s.sockIndex);
    }

    /** Session {@code s}'s connection monitor has events (as of the last wait). */
    boolean monitorReadable(WorkerSession s) {
        return s.sock != null && s.monitorIndex >= 0 && poller.pollin(s.monitorIndex);
    }

    void close() {
        poller.close();
    }
}
