// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;

/**
 * The connections of a worker's sessions, for its I/O thread ({@link WorkerIO}): a fresh DEALER
 * (with its CURVE keys and connection monitor) and READY; leaving one (DISCONNECT, abandoning what
 * it held, giving its credit share back); connecting again at once or after a backoff with jitter.
 * The caller rebuilds its poller whenever a socket was replaced.
 */
final class WorkerConnector {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.worker");
    /** A replaced connection's DISCONNECT gets this long to leave; the broker may be gone. */
    private static final int REPLACED_LINGER_MS = 200;
    static final long BACKOFF_MIN_NANOS = 100_000_000L;
    private static final long BACKOFF_MAX_NANOS = 5_000_000_000L;

    private final Worker w;
    private final WorkerWire wire;
    private final WorkerCredit credit;
    /** Sends READY on a session (with the credit its stopping state allows). */
    private final Consumer<WorkerSession> ready;
    private long lastGeneration;

    WorkerConnector(Worker worker, WorkerWire wire, WorkerCredit credit, Consumer<WorkerSession> ready) {
        this.w = worker;
        this.wire = wire;
        this.credit = credit;
        this.ready = ready;
    }

    /** A fresh DEALER and READY: the broker sees a new peer. */
    void open(WorkerSession s, long now) {
        s.sock = Sockets.dealer(w.context);
        if (w.curve != null) {
            w.curve.apply(s.sock, s.index);
        }
        s.monitor = new ConnectionMonitor(w.context, s.sock, s.endpoint, w.curve != null, now);
        s.sock.connect(s.endpoint);
        s.waitingToReconnect = false;
        s.epoch = null;
        s.registered = false;
        s.lastRecv = now;
        s.generation = ++lastGeneration;
        w.handlers.connections.add(s.generation);
        ready.accept(s);
    }

    /**
     * Leave the session's connection and open a new one at once. What the old one held is
     * abandoned; its share goes to the other registered brokers, and the new READY offers only
     * what they leave (none while they hold it all: the share comes back as they finish, once
     * this broker registers us again).
     */
    void reconnect(WorkerSession s, long now, String why, boolean stopping) {
        if (why != null) {
            LOG.log(Level.WARNING, "reconnecting to {0} ({1})", s.endpoint, why);
        }
        lose(s, why, stopping);
        s.told = credit.readyCredit(s);
        open(s, now);
    }

    /**
     * Leave the current connection: DISCONNECT on it first, so the broker drops that registration
     * at once and hands its jobs to others without counting an attempt (a registration left
     * behind would soak up jobs until declared lost). Nothing is ever sent on it again, and
     * what came on it is abandoned: jobs not started never run, results of running ones are dropped.
     */
    private void lose(WorkerSession s, String why, boolean stopping) {
        if (s.sock != null) {
            wire.control(s, Wire.DISCONNECT, Map.of("reason", "reconnecting: " + why));
            s.monitor.close(); // first: see ConnectionMonitor.close
            s.monitor = null;
            s.sock.setLinger(REPLACED_LINGER_MS);
            s.sock.close();
            s.sock = null;
            s.sockIndex = -1;
            s.monitorIndex = -1;
        }
        if (!s.held.isEmpty()) {
            LOG.log(Level.INFO, "abandoning {0} job(s) and request(s) of the replaced connection to {1} (those not "
                    + "started will not run; results of running ones are dropped)", s.held.size(), s.endpoint);
        }
        s.held.clear();
        w.handlers.connections.remove(s.generation);
        s.registered = false;
        credit.lost(s, stopping);
    }

    /** Close now and connect again after a backoff with jitter (after DISCONNECT from the broker). */
    void reconnectLater(WorkerSession s, long now, String why, boolean stopping) {
        LOG.log(Level.WARNING, "{0}; reconnecting to {1} in {2} ms", why, s.endpoint, s.backoff / 1_000_000);
        retryLater(s, now, why, stopping);
    }

    /** Close now and connect again after a backoff with jitter (logged by the caller). */
    void retryLater(WorkerSession s, long now, String why, boolean stopping) {
        lose(s, why, stopping);
        s.reconnectAt = now + s.backoff / 2 + ThreadLocalRandom.current().nextLong(s.backoff / 2 + 1);
        s.waitingToReconnect = true;
        s.backoff = Math.min(BACKOFF_MAX_NANOS, s.backoff * 2);
    }
}
