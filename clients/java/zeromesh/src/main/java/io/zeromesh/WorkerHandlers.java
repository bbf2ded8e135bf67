// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A {@link Worker}'s handler side: its handlers by name, the executor that runs them, and what
 * a handler's return or throw becomes (ACK, NACK, REPLY or ERROR as a {@link WorkerResult} put in
 * the outbox for the I/O thread). Handler threads touch no socket.
 */
final class WorkerHandlers {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.worker");
    /** Error messages and stack traces are cut to this, so an ERROR header stays well under 64 KiB. */
    static final int MAX_TEXT = 16 * 1024;

    private final Map<String, Handler> handlers = new ConcurrentHashMap<>();
    private final ExecutorService executor;
    private final boolean ownExecutor;
    private final Outbox<WorkerResult> outbox;
    /** Set by the I/O thread when stopping: handler tasks then skip jobs not yet started. */
    volatile boolean stopping;
    /**
     * The generations of the I/O thread's current connections (one per broker): a job that came on
     * a connection since replaced is abandoned, not run.
     */
    final Set<Long> connections = ConcurrentHashMap.newKeySet();

    /** {@code executor} null: a pool of {@code concurrency} daemon threads of our own. */
    WorkerHandlers(ExecutorService executor, int concurrency, int serial, Outbox<WorkerResult> outbox) {
        this.ownExecutor = executor == null;
        if (ownExecutor) {
            AtomicInteger n = new AtomicInteger();
            this.executor = Executors.newFixedThreadPool(concurrency, r -> {
                Thread t = new Thread(r, "zeromesh-handler-" + serial + "-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
            });
        } else {
            this.executor = executor;
        }
        this.outbox = outbox;
    }

    void put(String name, Handler handler) {
        handlers.put(name, handler);
    }

    boolean isEmpty() {
        return handlers.isEmpty();
    }

    /** The names served, sorted. */
    List<String> names() {
        List<String> names = new ArrayList<>(handlers.keySet());
        names.sort(null);
        return names;
    }

    /** Stop our own pool; an executor passed in is the caller's to shut down. */
    void shutdown() {
        if (ownExecutor) {
            executor.shutdownNow(); // handlers still running past the grace are interrupted; they hold no sockets
        }
    }

    /** Hand a job to the executor (I/O thread). */
    void submit(Job job) {
        try {
            executor.execute(() -> {
                WorkerResult result = execute(job);
                Thread.interrupted(); // see Outbox.ring: never touch ZeroMQ with the flag set
                outbox.put(result);
            });
        } catch (RejectedExecutionException e) {
            outbox.put(failed(job, e));
        }
    }

    private WorkerResult execute(Job job) {
        if (!connections.contains(job.generation()) || (job.kind() == Job.Kind.JOB && stopping)) {
            return new WorkerResult.Skipped(job);
        }
        if (job.kind() == Job.Kind.REQUEST && job.isCancelled()) {
            return cancelled(job, "cancelled before it started");
        }
        Handler handler = handlers.get(job.name());
        try {
            if (handler == null) {
                throw new IllegalStateException("this worker has no handler for '" + job.name() + "'");
            }
            // What the handler pushes or requests joins this message's trace (Traces).
            byte[] value = Traces.within(job, () -> handler.handle(job));
            if (job.kind() == Job.Kind.JOB) {
                return new WorkerResult.Ack(job);
            }
            if (job.isCancelled()) {
                return cancelled(job, "cancelled");
            }
            return new WorkerResult.Answer(job, value == null ? new byte[0] : value);
        } catch (Throwable t) { // a handler must never kill its thread or lose its answer
            return failed(job, t);
        }
    }

    private static WorkerResult cancelled(Job job, String message) {
        return new WorkerResult.Failure(job, Map.of("code", Wire.E_CANCELLED, "message", message));
    }

    private static WorkerResult failed(Job job, Throwable t) {
        if (job.kind() == Job.Kind.JOB) {
            boolean retry = !(t instanceof DeadLetterException);
            Long retryInMs = t instanceof RetryLaterException later ? later.delay().toMillis() : null;
            LOG.log(Level.WARNING, "{0} failed{1}: {2}", job, retry ? "" : " (dead letter)", describe(t));
            return new WorkerResult.Nack(job, describe(t), retry, retryInMs);
        }
        LOG.log(Level.INFO, "{0} failed: {1}", job, describe(t));
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("code", Wire.E_REMOTE);
        fields.put("name", t.getClass().getName());
        String message = t.getMessage();
        fields.put("message", clip(message == null || message.isEmpty() ? t.getClass().getName() : message));
        StringWriter trace = new StringWriter();
        t.printStackTrace(new PrintWriter(trace));
        fields.put("traceback", clip(trace.toString()));
        return new WorkerResult.Failure(job, fields);
    }

    /** "Class: message", the form a NACK's error takes. */
    static String describe(Throwable t) {
        return clip(t.getClass().getName() + ": " + (t.getMessage() == null ? "" : t.getMessage()));
    }

    static String clip(String text) {
        return text.length() <= MAX_TEXT ? text : text.substring(0, MAX_TEXT);
    }
}
