// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.zeromq.ZMQ;

/**
 * The worker's I/O thread: the only thread that touches the worker's DEALERs, one per broker
 * ({@link WorkerSession}), opened and replaced through its {@link WorkerConnector}.
 *
 * <p>Liveness never depends on handlers: READY, receiving JOB, JOB_BATCH, JOB_PACKED and REQUEST,
 * batched ACKs and REPLYs, HEARTBEAT every interval, EXTEND, noticing a dead or restarted broker
 * and registering again all happen here, per broker, while handlers run in the worker's executor
 * and hand their results back through the {@link Outbox}. Each result goes back on the session
 * (and connection) its job came from. The credit is split among the registered sessions
 * ({@link CreditSplit}) and re-balanced when one registers or is lost.
 */
final class WorkerIO implements Runnable {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.worker");
    /** Messages read per wake-up before flushing results (so ACKs never wait on a flood of jobs). */
    private static final int DRAIN_MAX = 1000;
    /** On stop, the last ACKs and DISCONNECT get this long to leave. */
    private static final int FINAL_LINGER_MS = 1000;

    private final Worker w;
    private final WorkerWire wire = new WorkerWire();
    private final List<WorkerSession> sessions = new ArrayList<>();
    private final WorkerCredit credit;
    private final WorkerConnector connector;
    private final WorkerRefusals refusals = new WorkerRefusals(Defaults.CONNECT_TIMEOUT.toNanos());
    private final long heartbeatNanos;
    private final long livenessNanos;
    private WorkerPoller poller;
    private ZMQ.Socket pull;
    private long nextBeat;
    private boolean stopping;
    private long stopDeadline;
    /** Tasks handed to the executor whose result has not come back. */
    private int outstanding;

    WorkerIO(Worker worker) {
        this.w = worker;
        this.heartbeatNanos = worker.heartbeat.toNanos();
        this.livenessNanos = heartbeatNanos * Defaults.HEARTBEAT_LIVENESS;
        List<String> endpoints = worker.endpoints;
        for (int i = 0; i < endpoints.size(); i++) {
            sessions.add(new WorkerSession(endpoints.get(i), i, WorkerConnector.BACKOFF_MIN_NANOS));
        }
        // A random offset rotates the split's list order, so workers do not all favour the first broker.
        int offset = endpoints.size() == 1 ? 0 : ThreadLocalRandom.current().nextInt(endpoints.size());
        this.credit = new WorkerCredit(sessions, worker.credit, offset, wire, this::ready);
        this.connector = new WorkerConnector(worker, wire, credit, this::ready);
    }

    @Override
    public void run() {
        pull = w.outbox.open();
        long now = System.nanoTime();
        credit.start();
        for (WorkerSession s : sessions) {
            connector.open(s, now);
        }
        poller = new WorkerPoller(w.context, pull, sessions);
        nextBeat = now + heartbeatNanos;
        w.ioReady.countDown();
        try {
            while (true) {
                now = System.nanoTime();
                poller.await(now, nextBeat, livenessNanos, stopping ? stopDeadline : null);
                if (poller.doorbell()) {
                    Outbox.drain(pull); // before take(): see Outbox
                }
                long before = now;
                now = System.nanoTime();
                boolean stalled = !stopping && now - before > livenessNanos + heartbeatNanos;
                for (WorkerSession s : sessions) {
                    if (s.sock != null && stalled) {
                        // poll() was due back within a heartbeat: this process was frozen (SIGSTOP, a
                        // paused VM, a long GC) long enough for the broker to drop us. Start afresh.
                        reconnect(s, now, "this process stalled for " + (now - before) / 1_000_000 + " ms");
                    }
                    if (poller.monitorReadable(s)) {
                        s.monitor.read(now);
                        if (refusals.refused(s, now)) {
                            retryLater(s, now, "refused", false);
                            continue; // JeroMQ does not retry a refused handshake: a new socket will
                        }
                    }
                    if (poller.readable(s)) {
                        read(s, now);
                    }
                }
                flush(w.outbox.take(), now);
                if (refusals.givingUp(sessions, now)) {
                    break;
                }
                if (stopping && (outstanding == 0 || now - stopDeadline >= 0)) {
                    break;
                }
                boolean beat = now - nextBeat >= 0;
                for (WorkerSession s : sessions) {
                    if (s.waitingToReconnect && now - s.reconnectAt >= 0) {
                        reconnect(s, now, null);
                    }
                    if (beat && s.sock != null) {
                        if (s.registered) {
                            control(s, Wire.HEARTBEAT, Map.of());
                        } else {
                            ready(s);
                        }
                    }
                    if (s.sock != null && now - s.lastRecv > livenessNanos) {
                        reconnect(s, now, "nothing heard for " + (now - s.lastRecv) / 1_000_000 + " ms");
                    }
                }
                if (beat) {
                    nextBeat = now + heartbeatNanos;
                }
            }
            finish();
            w.failure = refusals.failure();
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "worker I/O thread failed", e);
        } finally {
            w.outbox.close();
            poller.close();
            for (WorkerSession s : sessions) {
                if (s.sock != null) {
                    s.monitor.close(); // first: see ConnectionMonitor.close
                    s.sock.close();
                }
            }
            pull.close();
        }
    }

    // -- socket ---------------------------------------------------------------

    private void control(WorkerSession s, int command, Map<String, Object> fields) {
        wire.control(s, command, fields);
    }

    private void ready(WorkerSession s) {
        credit.readySent(s, wire.ready(s, w, stopping ? 0 : s.told));
    }

    /** Replace the session's connection at once ({@link WorkerConnector#reconnect}). */
    private void reconnect(WorkerSession s, long now, String why) {
        connector.reconnect(s, now, why, stopping);
        poller.rebuild();
    }

    /** Close now, connect again after a backoff ({@link WorkerConnector#retryLater}); logged if {@code log}. */
    private void retryLater(WorkerSession s, long now, String why, boolean log) {
        if (log) {
            connector.reconnectLater(s, now, why, stopping);
        } else {
            connector.retryLater(s, now, why, stopping);
        }
        poller.rebuild();
    }

    // -- from the brokers -----------------------------------------------------

    private void read(WorkerSession s, long now) {
        ZMQ.Socket from = s.sock;
        for (int n = 0; n < DRAIN_MAX; n++) {
            List<byte[]> frames = Sockets.tryRecv(from);
            if (frames == null) {
                return;
            }
            if (n == 0) {
                refusals.received(s);
            }
            s.lastRecv = now;
            Message message;
            try {
                message = Codec.unpack(frames);
            } catch (ProtocolException e) {
                LOG.log(Level.WARNING, "dropping a malformed message from {0}: {1}", s.endpoint, e.getMessage());
                continue; // never answer garbage
            }
            handle(s, message, now);
            if (s.sock != from) {
                return; // reconnected: the rest of the old socket's messages are moot
            }
        }
    }

    private void handle(WorkerSession s, Message message, long now) {
        switch (message.command()) {
            case Wire.JOB:
            case Wire.REQUEST: {
                registered(s);
                Job.Kind kind = message.command() == Wire.JOB ? Job.Kind.JOB : Job.Kind.REQUEST;
                for (Item item : message.items()) {
                    receive(s, new Job(kind, item.header(), item.body(), s.generation, w.outbox::put));
                }
                break;
            }
            case Wire.JOB_BATCH:
            case Wire.JOB_PACKED: {
                registered(s);
                List<Job> jobs = Job.fromBatch(message, s.generation, w.outbox::put);
                LOG.log(Level.DEBUG, "{0} of {1} job(s) from {2}", message.name(), jobs.size(), s.endpoint);
                for (Job job : jobs) {
                    receive(s, job);
                }
                break;
            }
            case Wire.CANCEL: {
                Job job = s.held.get((String) message.header().get("re"));
                if (job != null) {
                    job.cancel();
                }
                break;
            }
            case Wire.HEARTBEAT: {
                Object e = message.header().get("epoch");
                if (e instanceof String epoch && s.epoch != null && !epoch.equals(s.epoch)) {
                    reconnect(s, now, "broker epoch changed " + s.epoch + " -> " + epoch);
                } else {
                    // We send no HEARTBEAT before registering, so this answers our READY
                    // (or is the broker's beat to its registered workers).
                    if (e instanceof String epoch) {
                        s.epoch = epoch;
                    }
                    registered(s);
                    credit.answered(s, message.header().get("re"), stopping);
                }
                break;
            }
            case Wire.ERROR: {
                Object code = message.header().get("code");
                if (Wire.E_UNKNOWN_PEER.equals(code)) {
                    LOG.log(Level.INFO, "the broker at {0} does not know us; sending READY again", s.endpoint);
                    s.registered = false;
                    credit.rebalance(stopping);
                    ready(s);
                } else if (Wire.E_FORBIDDEN.equals(code) && !s.registered) {
                    refusals.forbidden(s, message.header().get("message")); // the READY: nothing to serve
                } else {
                    LOG.log(Level.WARNING, "broker {0} error {1}: {2}", s.endpoint, code, message.header().get("message"));
                }
                break;
            }
            case Wire.DISCONNECT:
                if (!stopping) {
                    retryLater(s, now, "the broker at " + s.endpoint + " said DISCONNECT ("
                            + message.header().get("reason") + ")", true);
                }
                break;
            default:
                LOG.log(Level.DEBUG, "ignoring unexpected {0} from {1}", message.name(), s.endpoint);
        }
    }

    private void receive(WorkerSession s, Job job) {
        s.held.put(job.id(), job);
        // While stopping, jobs stay unstarted: DISCONNECT hands them back. Requests must be answered.
        if (!(stopping && job.kind() == Job.Kind.JOB)) {
            outstanding++;
            w.handlers.submit(job);
        }
    }

    private void registered(WorkerSession s) {
        s.backoff = WorkerConnector.BACKOFF_MIN_NANOS;
        w.registered.countDown();
        if (!s.registered) {
            s.registered = true;
            credit.rebalance(stopping);
        }
    }

    /** The session whose current connection is {@code generation}; null when it was replaced. */
    private WorkerSession sessionOf(long generation) {
        for (WorkerSession s : sessions) {
            if (s.generation == generation && s.sock != null) {
                return s;
            }
        }
        return null;
    }

    // -- from the handlers ----------------------------------------------------

    /** Handler results: each on the session (and connection) its job came from, batched per wake-up. */
    private void flush(List<WorkerResult> results, long now) {
        ResultBatch batch = new ResultBatch(wire);
        boolean finished = false;
        for (WorkerResult result : results) {
            if (result instanceof WorkerResult.Stop stop) {
                beginStop(now, stop.graceNanos());
                continue;
            }
            if (result instanceof WorkerResult.Extend ext) {
                WorkerSession s = sessionOf(ext.job().generation());
                if (s != null && s.held.get(ext.job().id()) == ext.job()) {
                    batch.extend(s, ext);
                }
                continue;
            }
            Job job = WorkerResult.jobOf(result);
            outstanding--;
            // The session (and connection) the job came from; none when it was replaced since.
            WorkerSession s = sessionOf(job.generation());
            if (s == null || s.held.remove(job.id()) != job) {
                continue; // from an abandoned connection, or answered already
            }
            if (result instanceof WorkerResult.Skipped) {
                s.held.put(job.id(), job); // still held: DISCONNECT hands it back
                continue;
            }
            finished = true;
            batch.finished(s, result);
        }
        if (finished) {
            // Before the ACKs: a lowered credit must reach the broker before the ACK that frees a
            // slot, or it refills that slot under the old credit. A share that waited can grow now.
            credit.rebalance(stopping);
        }
        batch.send();
    }

    private void beginStop(long now, long graceNanos) {
        if (stopping) {
            return;
        }
        stopping = true;
        w.handlers.stopping = true;
        stopDeadline = now + graceNanos;
        for (WorkerSession s : sessions) {
            control(s, Wire.CREDIT, Map.of("credit", 0));
        }
    }

    private void finish() {
        flush(w.outbox.close(), System.nanoTime());
        int unfinished = 0;
        for (WorkerSession s : sessions) {
            unfinished += s.held.size();
            control(s, Wire.DISCONNECT, Map.of("reason", "stopping"));
            if (s.sock != null) {
                s.sock.setLinger(FINAL_LINGER_MS);
            }
        }
        LOG.log(Level.INFO, "worker stopped; {0} job(s) handed back to the broker", unfinished);
    }
}
