// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.zeromq.ZMQ;

/**
 * The worker's I/O thread: the only code that touches the worker's DEALERs, one per broker
 * ({@link WorkerSession}).
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
    /** A replaced connection's DISCONNECT gets this long to leave; the broker may be gone. */
    private static final int REPLACED_LINGER_MS = 200;
    private static final long BACKOFF_MIN_NANOS = 100_000_000L;
    private static final long BACKOFF_MAX_NANOS = 5_000_000_000L;

    /** What handler threads (and the Worker) hand to this thread. */
    sealed interface Result permits Ack, Nack, Answer, Failure, Skipped, Extend, Stop {}

    record Ack(Job job) implements Result {}

    record Nack(Job job, String error, boolean retry) implements Result {}

    /** A request's REPLY. */
    record Answer(Job job, byte[] body) implements Result {}

    /** A request's ERROR (code remote or cancelled). */
    record Failure(Job job, Map<String, Object> fields) implements Result {}

    /**
     * A job not started: the worker is stopping (DISCONNECT hands it back), or it came on a
     * connection since replaced (abandoned: the broker hands it to someone else).
     */
    record Skipped(Job job) implements Result {}

    record Extend(Job job, long leaseMs) implements Result {}

    record Stop(long graceNanos) implements Result {}

    private final Worker w;
    private final IdGenerator ids = new IdGenerator();
    private final List<WorkerSession> sessions = new ArrayList<>();
    /** Rotates the credit split's list order, so workers do not all favour the first broker. */
    private final int offset;
    private final long heartbeatNanos;
    private final long livenessNanos;
    private ZMQ.Poller poller;
    private ZMQ.Socket pull;
    private int pullIndex;
    private long lastGeneration;
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
        this.offset = endpoints.size() == 1 ? 0 : ThreadLocalRandom.current().nextInt(endpoints.size());
        for (int i = 0; i < endpoints.size(); i++) {
            sessions.add(new WorkerSession(endpoints.get(i), i, BACKOFF_MIN_NANOS));
        }
    }

    @Override
    public void run() {
        pull = w.outbox.open();
        long now = System.nanoTime();
        // At the start every broker is expected: each gets its share in its READY at once.
        int[] shares = CreditSplit.shares(w.credit, all(true), offset);
        for (WorkerSession s : sessions) {
            s.told = shares[s.index];
            open(s, now);
        }
        poll();
        nextBeat = now + heartbeatNanos;
        w.ioReady.countDown();
        try {
            while (true) {
                now = System.nanoTime();
                long wake = nextBeat;
                for (WorkerSession s : sessions) {
                    if (s.sock != null) {
                        wake = Math.min(wake, s.lastRecv + livenessNanos);
                    }
                    if (s.waitingToReconnect) {
                        wake = Math.min(wake, s.reconnectAt);
                    }
                }
                if (stopping) {
                    wake = Math.min(wake, stopDeadline);
                }
                poller.poll(Math.max(0, (wake - now) / 1_000_000) + 1);
                if (poller.pollin(pullIndex)) {
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
                    if (s.sock != null && poller.pollin(s.sockIndex)) {
                        read(s, now);
                    }
                }
                flush(w.outbox.take(), now);
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
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "worker I/O thread failed", e);
        } finally {
            w.outbox.close();
            poller.close();
            for (WorkerSession s : sessions) {
                if (s.sock != null) {
                    s.sock.close();
                }
            }
            pull.close();
        }
    }

    /**
     * A poller over the outbox doorbell and every session's current socket, made again whenever a
     * socket is replaced: unregistering one from a jeromq Poller moves the others' indices.
     */
    private void poll() {
        if (poller != null) {
            poller.close();
        }
        poller = w.context.createPoller(1 + sessions.size());
        pullIndex = poller.register(pull, ZMQ.Poller.POLLIN);
        for (WorkerSession s : sessions) {
            s.sockIndex = s.sock == null ? -1 : poller.register(s.sock, ZMQ.Poller.POLLIN);
        }
    }

    private boolean[] all(boolean value) {
        boolean[] flags = new boolean[sessions.size()];
        java.util.Arrays.fill(flags, value);
        return flags;
    }

    // -- socket ---------------------------------------------------------------

    private void send(WorkerSession s, List<byte[]> frames) {
        if (s.sock == null) {
            return; // between connections: the broker redelivers what we could not answer
        }
        if (!Sockets.trySend(s.sock, frames)) {
            LOG.log(Level.WARNING, "send queue to {0} full; dropping a message", s.endpoint);
        }
    }

    private void control(WorkerSession s, int command, Map<String, Object> fields) {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("id", ids.next());
        header.putAll(fields);
        send(s, Codec.packControl(command, header));
    }

    private void ready(WorkerSession s) {
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("names", w.names());
        fields.put("credit", stopping ? 0 : s.told);
        fields.put("lang", "java");
        if (w.label != null) {
            fields.put("label", w.label);
        }
        if (w.batch) {
            fields.put("batch", true);
            fields.put("packed", true);
        }
        control(s, Wire.READY, fields);
    }

    /** A fresh DEALER and READY: the broker sees a new peer. */
    private void open(WorkerSession s, long now) {
        s.sock = Sockets.dealer(w.context, s.endpoint);
        s.waitingToReconnect = false;
        s.epoch = null;
        s.registered = false;
        s.lastRecv = now;
        s.generation = ++lastGeneration;
        w.connections.add(s.generation);
        ready(s);
    }

    /**
     * Leave the session's connection and open a new one at once. What the old one held is
     * abandoned; its share goes to the other registered brokers, and the new READY offers only
     * what they leave (none while they hold it all: the share comes back as they finish, once
     * this broker registers us again).
     */
    private void reconnect(WorkerSession s, long now, String why) {
        if (why != null) {
            LOG.log(Level.WARNING, "reconnecting to {0} ({1})", s.endpoint, why);
        }
        lose(s, why);
        s.told = readyCredit(s);
        open(s, now);
        poll();
    }

    /**
     * Leave the current connection: DISCONNECT on it first, so the broker drops that registration
     * at once and hands its jobs to others without counting an attempt (a registration left
     * behind would soak up jobs until declared lost). Nothing is ever sent on it again, and
     * what came on it is abandoned: jobs not started never run, results of running ones are dropped.
     */
    private void lose(WorkerSession s, String why) {
        if (s.sock != null) {
            control(s, Wire.DISCONNECT, Map.of("reason", "reconnecting: " + why));
            s.sock.setLinger(REPLACED_LINGER_MS);
            s.sock.close();
            s.sock = null;
            s.sockIndex = -1;
        }
        if (!s.held.isEmpty()) {
            LOG.log(Level.INFO, "abandoning {0} job(s) and request(s) of the replaced connection to {1} (those not "
                    + "started will not run; results of running ones are dropped)", s.held.size(), s.endpoint);
        }
        s.held.clear();
        w.connections.remove(s.generation);
        s.registered = false;
        s.told = 0;
        rebalance();
    }

    /** Close now and connect again after a backoff with jitter (after DISCONNECT from the broker). */
    private void reconnectLater(WorkerSession s, long now, String why) {
        LOG.log(Level.WARNING, "{0}; reconnecting to {1} in {2} ms", why, s.endpoint, s.backoff / 1_000_000);
        lose(s, why);
        s.reconnectAt = now + s.backoff / 2 + ThreadLocalRandom.current().nextLong(s.backoff / 2 + 1);
        s.waitingToReconnect = true;
        s.backoff = Math.min(BACKOFF_MAX_NANOS, s.backoff * 2);
        poll();
    }

    // -- credit ---------------------------------------------------------------

    /** The credit a READY to {@code s} offers: its share were it registered, out of what the others leave. */
    private int readyCredit(WorkerSession s) {
        boolean[] registered = registered();
        registered[s.index] = true;
        int others = 0;
        for (WorkerSession o : sessions) {
            if (o != s) {
                others += o.told;
            }
        }
        return Math.max(0, Math.min(CreditSplit.shares(w.credit, registered, offset)[s.index], w.credit - others));
    }

    private boolean[] registered() {
        boolean[] registered = new boolean[sessions.size()];
        for (WorkerSession s : sessions) {
            registered[s.index] = s.registered;
        }
        return registered;
    }

    /**
     * Split the credit again among the registered sessions and send CREDIT to each whose share
     * changed ({@link CreditSplit#next}: the total told never exceeds the credit). Sessions not
     * registered keep what their READY offered. Called when a session registers or is lost, and
     * after results came back (a share that had to wait for held jobs to finish).
     */
    private void rebalance() {
        if (stopping || sessions.size() == 1) {
            return; // one broker: its share is the whole credit, as READY said
        }
        int n = sessions.size();
        int[] told = new int[n];
        int[] held = new int[n];
        int[] target = CreditSplit.shares(w.credit - unregisteredTold(), registered(), offset);
        for (WorkerSession s : sessions) {
            told[s.index] = s.told;
            held[s.index] = s.held.size();
            if (!s.registered) {
                target[s.index] = s.told;
            }
        }
        int[] next = CreditSplit.next(w.credit, told, held, target);
        for (WorkerSession s : sessions) {
            if (next[s.index] != s.told) {
                s.told = next[s.index];
                if (s.registered) {
                    control(s, Wire.CREDIT, Map.of("credit", s.told));
                }
            }
        }
    }

    private int unregisteredTold() {
        int sum = 0;
        for (WorkerSession s : sessions) {
            if (!s.registered) {
                sum += s.told;
            }
        }
        return sum;
    }

    // -- from the brokers -----------------------------------------------------

    private void read(WorkerSession s, long now) {
        ZMQ.Socket from = s.sock;
        for (int n = 0; n < DRAIN_MAX; n++) {
            List<byte[]> frames = Sockets.tryRecv(from);
            if (frames == null) {
                return;
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
                // Each body is a first delivery, exactly as a JOB with this header would bring it.
                // A JOB_PACKED is a JOB_BATCH whose bodies the codec already cut at "sizes".
                Map<String, Object> shared = message.header();
                List<?> jobIds = (List<?>) shared.get("ids");
                LOG.log(Level.DEBUG, "{0} of {1} job(s) from {2}", message.name(), jobIds.size(), s.endpoint);
                for (int i = 0; i < jobIds.size(); i++) {
                    String id = (String) jobIds.get(i);
                    Map<String, Object> header = new LinkedHashMap<>();
                    header.put("id", id);
                    header.put("queue", shared.get("queue"));
                    header.put("attempt", 1L);
                    header.put("trace", id);
                    header.put("lease_ms", shared.get("lease_ms"));
                    if (shared.get("headers") != null) {
                        header.put("headers", shared.get("headers"));
                    }
                    receive(s, new Job(Job.Kind.JOB, header, message.bodies().get(i), s.generation, w.outbox::put));
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
                }
                break;
            }
            case Wire.ERROR: {
                Object code = message.header().get("code");
                if (Wire.E_UNKNOWN_PEER.equals(code)) {
                    LOG.log(Level.INFO, "the broker at {0} does not know us; sending READY again", s.endpoint);
                    s.registered = false;
                    rebalance();
                    ready(s);
                } else {
                    LOG.log(Level.WARNING, "broker {0} error {1}: {2}", s.endpoint, code, message.header().get("message"));
                }
                break;
            }
            case Wire.DISCONNECT:
                if (!stopping) {
                    reconnectLater(s, now, "the broker at " + s.endpoint + " said DISCONNECT ("
                            + message.header().get("reason") + ")");
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
            w.submit(job);
        }
    }

    private void registered(WorkerSession s) {
        s.backoff = BACKOFF_MIN_NANOS;
        w.registered.countDown();
        if (!s.registered) {
            s.registered = true;
            rebalance();
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

    /** What one wake-up's results send on one session: batched, one ACK and one REPLY message at most. */
    private static final class Outgoing {
        final List<String> acks = new ArrayList<>();
        final List<byte[]> replyHeaders = new ArrayList<>();
        final List<byte[]> replyBodies = new ArrayList<>();
        final Map<Long, List<String>> extensions = new LinkedHashMap<>();
    }

    private void flush(List<Result> results, long now) {
        Map<WorkerSession, Outgoing> out = new IdentityHashMap<>();
        boolean finished = false;
        for (Result result : results) {
            if (result instanceof Stop stop) {
                beginStop(now, stop.graceNanos());
                continue;
            }
            if (result instanceof Extend ext) {
                WorkerSession s = sessionOf(ext.job().generation());
                if (s != null && s.held.get(ext.job().id()) == ext.job()) {
                    out.computeIfAbsent(s, k -> new Outgoing()).extensions
                            .computeIfAbsent(ext.leaseMs(), k -> new ArrayList<>()).add(ext.job().id());
                }
                continue;
            }
            Job job = jobOf(result);
            outstanding--;
            // The session (and connection) the job came from; none when it was replaced since.
            WorkerSession s = sessionOf(job.generation());
            if (s == null || s.held.remove(job.id()) != job) {
                continue; // from an abandoned connection, or answered already
            }
            finished = true;
            Outgoing o = out.computeIfAbsent(s, k -> new Outgoing());
            if (result instanceof Ack) {
                o.acks.add(job.id());
            } else if (result instanceof Nack nack) {
                Map<String, Object> fields = new LinkedHashMap<>();
                fields.put("re", job.id());
                fields.put("error", Worker.clip(nack.error()));
                if (!nack.retry()) {
                    fields.put("retry", false);
                }
                control(s, Wire.NACK, fields);
            } else if (result instanceof Answer answer) {
                Map<String, Object> header = new LinkedHashMap<>();
                header.put("id", ids.next());
                header.put("re", job.id());
                o.replyHeaders.add(Codec.packHeader(header));
                o.replyBodies.add(answer.body());
            } else if (result instanceof Failure failure) {
                Map<String, Object> fields = new LinkedHashMap<>();
                fields.put("re", job.id());
                fields.putAll(failure.fields());
                control(s, Wire.ERROR, fields);
            } else {
                s.held.put(job.id(), job); // Skipped: still held, DISCONNECT hands it back
            }
        }
        for (Map.Entry<WorkerSession, Outgoing> e : out.entrySet()) {
            send(e.getKey(), e.getValue());
        }
        if (finished) {
            rebalance(); // a share that waited for held jobs to finish can grow now
        }
    }

    /** One ACK (and one REPLY) message per wake-up and session, however many results. */
    private void send(WorkerSession s, Outgoing o) {
        for (int i = 0; i < o.acks.size(); i += Wire.MAX_IDS_PER_MESSAGE) {
            control(s, Wire.ACK, Map.of("ids", o.acks.subList(i, Math.min(o.acks.size(), i + Wire.MAX_IDS_PER_MESSAGE))));
        }
        for (int i = 0; i < o.replyHeaders.size(); i += Wire.MAX_ITEMS_PER_MESSAGE) {
            int end = Math.min(o.replyHeaders.size(), i + Wire.MAX_ITEMS_PER_MESSAGE);
            send(s, Codec.assemble(Wire.REPLY, o.replyHeaders.subList(i, end), o.replyBodies.subList(i, end)));
        }
        for (Map.Entry<Long, List<String>> e : o.extensions.entrySet()) {
            List<String> jobIds = e.getValue();
            for (int i = 0; i < jobIds.size(); i += Wire.MAX_IDS_PER_MESSAGE) {
                control(s, Wire.EXTEND, Map.of("ids",
                        jobIds.subList(i, Math.min(jobIds.size(), i + Wire.MAX_IDS_PER_MESSAGE)), "lease_ms", e.getKey()));
            }
        }
    }

    private static Job jobOf(Result result) {
        if (result instanceof Ack a) {
            return a.job();
        } else if (result instanceof Nack n) {
            return n.job();
        } else if (result instanceof Answer a) {
            return a.job();
        } else if (result instanceof Failure f) {
            return f.job();
        }
        return ((Skipped) result).job();
    }

    private void beginStop(long now, long graceNanos) {
        if (stopping) {
            return;
        }
        stopping = true;
        w.stopping = true;
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
