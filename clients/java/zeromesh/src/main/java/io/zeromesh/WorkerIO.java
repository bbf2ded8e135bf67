// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.zeromq.ZMQ;

/**
 * The worker's I/O thread: the only code that touches the worker's DEALER.
 *
 * <p>Liveness never depends on handlers: READY, receiving JOB, JOB_BATCH, JOB_PACKED and REQUEST,
 * batched ACKs and REPLYs, HEARTBEAT every interval, EXTEND, noticing a dead or restarted broker
 * and registering again all happen here, while handlers run in the worker's executor and hand
 * their results back through the {@link Outbox}.
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
    private final Map<String, Job> held = new HashMap<>();
    private final long heartbeatNanos;
    private final long livenessNanos;
    private ZMQ.Socket sock;
    private ZMQ.Poller poller;
    private ZMQ.Socket pull;
    private int pullIndex;
    private int sockIndex = -1;
    private long generation;
    private String epoch;
    /** Until the broker shows it knows us, each beat is a READY: a READY can be lost. */
    private boolean registered;
    private long lastRecv;
    private long nextBeat;
    private long reconnectAt;
    private boolean waitingToReconnect;
    private long backoff = BACKOFF_MIN_NANOS;
    private boolean stopping;
    private long stopDeadline;
    /** Tasks handed to the executor whose result has not come back. */
    private int outstanding;

    WorkerIO(Worker worker) {
        this.w = worker;
        this.heartbeatNanos = worker.heartbeat.toNanos();
        this.livenessNanos = heartbeatNanos * Defaults.HEARTBEAT_LIVENESS;
    }

    @Override
    public void run() {
        pull = w.outbox.open();
        poller = w.context.createPoller(2);
        pullIndex = poller.register(pull, ZMQ.Poller.POLLIN);
        long now = System.nanoTime();
        connect(now, null);
        nextBeat = now + heartbeatNanos;
        w.ioReady.countDown();
        try {
            while (true) {
                now = System.nanoTime();
                long wake = nextBeat;
                if (sock != null) {
                    wake = Math.min(wake, lastRecv + livenessNanos);
                }
                if (stopping) {
                    wake = Math.min(wake, stopDeadline);
                }
                if (waitingToReconnect) {
                    wake = Math.min(wake, reconnectAt);
                }
                poller.poll(Math.max(0, (wake - now) / 1_000_000) + 1);
                if (poller.pollin(pullIndex)) {
                    Outbox.drain(pull); // before take(): see Outbox
                }
                long before = now;
                now = System.nanoTime();
                if (sock != null && !stopping && now - before > livenessNanos + heartbeatNanos) {
                    // poll() was due back within a heartbeat: this process was frozen (SIGSTOP, a
                    // paused VM, a long GC) long enough for the broker to drop us. Start afresh.
                    connect(now, "this process stalled for " + (now - before) / 1_000_000 + " ms");
                }
                if (sock != null && poller.pollin(sockIndex)) {
                    read(now);
                }
                flush(w.outbox.take(), now);
                if (stopping && (outstanding == 0 || now - stopDeadline >= 0)) {
                    break;
                }
                if (waitingToReconnect && now - reconnectAt >= 0) {
                    connect(now, null);
                }
                if (now - nextBeat >= 0) {
                    if (sock != null) {
                        if (registered) {
                            control(Wire.HEARTBEAT, Map.of());
                        } else {
                            ready();
                        }
                    }
                    nextBeat = now + heartbeatNanos;
                }
                if (sock != null && now - lastRecv > livenessNanos) {
                    connect(now, "nothing heard for " + (now - lastRecv) / 1_000_000 + " ms");
                }
            }
            finish();
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "worker I/O thread failed", e);
        } finally {
            w.outbox.close();
            poller.close();
            if (sock != null) {
                sock.close();
            }
            pull.close();
        }
    }

    // -- socket ---------------------------------------------------------------

    private void send(List<byte[]> frames) {
        if (sock == null) {
            return; // between connections: the broker redelivers what we could not answer
        }
        if (!Sockets.trySend(sock, frames)) {
            LOG.log(Level.WARNING, "send queue to {0} full; dropping a message", w.endpoint);
        }
    }

    private void control(int command, Map<String, Object> fields) {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("id", ids.next());
        header.putAll(fields);
        send(Codec.packControl(command, header));
    }

    private void ready() {
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("names", w.names());
        fields.put("credit", stopping ? 0 : w.credit);
        fields.put("lang", "java");
        if (w.label != null) {
            fields.put("label", w.label);
        }
        if (w.batch) {
            fields.put("batch", true);
            fields.put("packed", true);
        }
        control(Wire.READY, fields);
    }

    /** A fresh DEALER and READY: the broker sees a new peer, and what the old one held is abandoned. */
    private void connect(long now, String why) {
        if (why != null) {
            LOG.log(Level.WARNING, "reconnecting to {0} ({1})", w.endpoint, why);
        }
        closeSocket(why);
        sock = Sockets.dealer(w.context, w.endpoint);
        sockIndex = poller.register(sock, ZMQ.Poller.POLLIN);
        waitingToReconnect = false;
        epoch = null;
        registered = false;
        lastRecv = now;
        ready();
    }

    /**
     * Leave the current connection: DISCONNECT on it first, so the broker drops that registration
     * at once and hands its jobs to others without counting an attempt (a registration left
     * behind would soak up jobs until declared lost). Nothing is ever sent on it again, and
     * what came on it is abandoned: jobs not started never run, results of running ones are dropped.
     */
    private void closeSocket(String why) {
        if (sock != null) {
            control(Wire.DISCONNECT, Map.of("reason", "reconnecting: " + why));
            sock.setLinger(REPLACED_LINGER_MS);
            poller.unregister(sock);
            sock.close();
            sock = null;
            sockIndex = -1;
        }
        if (!held.isEmpty()) {
            LOG.log(Level.INFO, "abandoning {0} job(s) and request(s) of the replaced connection (those not started "
                    + "will not run; results of running ones are dropped)", held.size());
        }
        held.clear();
        generation++;
        w.connection = generation;
    }

    /** Close now and connect again after a backoff with jitter (after DISCONNECT from the broker). */
    private void reconnectLater(long now, String why) {
        LOG.log(Level.WARNING, "{0}; reconnecting in {1} ms", why, backoff / 1_000_000);
        closeSocket(why);
        reconnectAt = now + backoff / 2 + ThreadLocalRandom.current().nextLong(backoff / 2 + 1);
        waitingToReconnect = true;
        backoff = Math.min(BACKOFF_MAX_NANOS, backoff * 2);
    }

    // -- from the broker ------------------------------------------------------

    private void read(long now) {
        ZMQ.Socket from = sock;
        for (int n = 0; n < DRAIN_MAX; n++) {
            List<byte[]> frames = Sockets.tryRecv(from);
            if (frames == null) {
                return;
            }
            lastRecv = now;
            Message message;
            try {
                message = Codec.unpack(frames);
            } catch (ProtocolException e) {
                LOG.log(Level.WARNING, "dropping a malformed message from the broker: {0}", e.getMessage());
                continue; // never answer garbage
            }
            handle(message, now);
            if (sock != from) {
                return; // reconnected: the rest of the old socket's messages are moot
            }
        }
    }

    private void handle(Message message, long now) {
        switch (message.command()) {
            case Wire.JOB:
            case Wire.REQUEST: {
                registered();
                Job.Kind kind = message.command() == Wire.JOB ? Job.Kind.JOB : Job.Kind.REQUEST;
                for (Item item : message.items()) {
                    receive(new Job(kind, item.header(), item.body(), generation, w.outbox::put));
                }
                break;
            }
            case Wire.JOB_BATCH:
            case Wire.JOB_PACKED: {
                registered();
                // Each body is a first delivery, exactly as a JOB with this header would bring it.
                // A JOB_PACKED is a JOB_BATCH whose bodies the codec already cut at "sizes".
                Map<String, Object> shared = message.header();
                List<?> jobIds = (List<?>) shared.get("ids");
                LOG.log(Level.DEBUG, "{0} of {1} job(s) from the broker", message.name(), jobIds.size());
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
                    receive(new Job(Job.Kind.JOB, header, message.bodies().get(i), generation, w.outbox::put));
                }
                break;
            }
            case Wire.CANCEL: {
                Job job = held.get((String) message.header().get("re"));
                if (job != null) {
                    job.cancel();
                }
                break;
            }
            case Wire.HEARTBEAT: {
                Object e = message.header().get("epoch");
                if (e instanceof String s && epoch != null && !s.equals(epoch)) {
                    connect(now, "broker epoch changed " + epoch + " -> " + s);
                } else {
                    // We send no HEARTBEAT before registering, so this answers our READY
                    // (or is the broker's beat to its registered workers).
                    if (e instanceof String s) {
                        epoch = s;
                    }
                    registered();
                }
                break;
            }
            case Wire.ERROR: {
                Object code = message.header().get("code");
                if (Wire.E_UNKNOWN_PEER.equals(code)) {
                    LOG.log(Level.INFO, "the broker does not know us; sending READY again");
                    registered = false;
                    ready();
                } else {
                    LOG.log(Level.WARNING, "broker error {0}: {1}", code, message.header().get("message"));
                }
                break;
            }
            case Wire.DISCONNECT:
                if (!stopping) {
                    reconnectLater(now, "the broker said DISCONNECT (" + message.header().get("reason") + ")");
                }
                break;
            default:
                LOG.log(Level.DEBUG, "ignoring unexpected {0} from the broker", message.name());
        }
    }

    private void receive(Job job) {
        held.put(job.id(), job);
        // While stopping, jobs stay unstarted: DISCONNECT hands them back. Requests must be answered.
        if (!(stopping && job.kind() == Job.Kind.JOB)) {
            outstanding++;
            w.submit(job);
        }
    }

    private void registered() {
        registered = true;
        backoff = BACKOFF_MIN_NANOS;
        w.registered.countDown();
    }

    // -- from the handlers ----------------------------------------------------

    private void flush(List<Result> results, long now) {
        List<String> acks = new ArrayList<>();
        List<byte[]> replyHeaders = new ArrayList<>();
        List<byte[]> replyBodies = new ArrayList<>();
        Map<Long, List<String>> extends_ = new LinkedHashMap<>();
        for (Result result : results) {
            if (result instanceof Stop stop) {
                beginStop(now, stop.graceNanos());
                continue;
            }
            if (result instanceof Extend ext) {
                if (held.get(ext.job().id()) == ext.job()) {
                    extends_.computeIfAbsent(ext.leaseMs(), k -> new ArrayList<>()).add(ext.job().id());
                }
                continue;
            }
            Job job = jobOf(result);
            outstanding--;
            if (job.generation() != generation || held.remove(job.id()) != job) {
                continue; // from an abandoned connection, or answered already
            }
            if (result instanceof Ack) {
                acks.add(job.id());
            } else if (result instanceof Nack nack) {
                Map<String, Object> fields = new LinkedHashMap<>();
                fields.put("re", job.id());
                fields.put("error", Worker.clip(nack.error()));
                if (!nack.retry()) {
                    fields.put("retry", false);
                }
                control(Wire.NACK, fields);
            } else if (result instanceof Answer answer) {
                Map<String, Object> header = new LinkedHashMap<>();
                header.put("id", ids.next());
                header.put("re", job.id());
                replyHeaders.add(Codec.packHeader(header));
                replyBodies.add(answer.body());
            } else if (result instanceof Failure failure) {
                Map<String, Object> fields = new LinkedHashMap<>();
                fields.put("re", job.id());
                fields.putAll(failure.fields());
                control(Wire.ERROR, fields);
            } else {
                held.put(job.id(), job); // Skipped: still held, DISCONNECT hands it back
            }
        }
        // One ACK (and one REPLY) message per wake-up, however many results.
        for (int i = 0; i < acks.size(); i += Wire.MAX_IDS_PER_MESSAGE) {
            control(Wire.ACK, Map.of("ids", acks.subList(i, Math.min(acks.size(), i + Wire.MAX_IDS_PER_MESSAGE))));
        }
        for (int i = 0; i < replyHeaders.size(); i += Wire.MAX_ITEMS_PER_MESSAGE) {
            int end = Math.min(replyHeaders.size(), i + Wire.MAX_ITEMS_PER_MESSAGE);
            send(Codec.assemble(Wire.REPLY, replyHeaders.subList(i, end), replyBodies.subList(i, end)));
        }
        for (Map.Entry<Long, List<String>> e : extends_.entrySet()) {
            List<String> jobIds = e.getValue();
            for (int i = 0; i < jobIds.size(); i += Wire.MAX_IDS_PER_MESSAGE) {
                control(Wire.EXTEND, Map.of("ids", jobIds.subList(i, Math.min(jobIds.size(), i + Wire.MAX_IDS_PER_MESSAGE)),
                        "lease_ms", e.getKey()));
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
        control(Wire.CREDIT, Map.of("credit", 0));
    }

    private void finish() {
        flush(w.outbox.close(), System.nanoTime());
        int unfinished = held.size();
        control(Wire.DISCONNECT, Map.of("reason", "stopping"));
        if (sock != null) {
            sock.setLinger(FINAL_LINGER_MS);
        }
        LOG.log(Level.INFO, "worker stopped; {0} job(s) handed back to the broker", unfinished);
    }
}
