// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.zeromq.ZContext;

/**
 * Serves queues and services by name (one name space) with handlers run in an ExecutorService.
 *
 * <pre>{@code
 * Worker worker = Worker.builder().endpoint("tcp://127.0.0.1:5555").concurrency(8).build();
 * worker.handle("thumbs", job -> { makeThumbnail(job.body()); return null; });
 * worker.handle("resize", job -> resize(job.body()));
 * worker.run(); // until close() or SIGTERM/SIGINT
 * }</pre>
 *
 * <p><b>Threads.</b> All socket I/O and heartbeats happen in one dedicated I/O thread
 * ("zeromesh-worker-io"), so a handler that computes for minutes never stops heartbeats.
 * Handlers run in {@code concurrency} threads (or the executor you pass in) and hand their
 * results back through a locked queue and an inproc doorbell. {@link #handle} is for setup:
 * register every handler before {@link #start()}, from any one thread. {@link #close()} may be
 * called from any thread. Handlers must be thread-safe when concurrency is above 1. Don't
 * interrupt handler threads from outside; check {@link Job#isCancelled()} instead.
 *
 * <p><b>Traces.</b> While a handler runs for a job or request, what its thread pushes or requests
 * carries that message's trace and, as parent, its id; {@link #currentJob()} is that message. A
 * thread the handler starts does not inherit it: wrap its task with {@link #carrying}, or give
 * {@link PushOptions.Builder#trace} and {@link PushOptions.Builder#parent} by hand. READY names
 * the worker's {@code host} (looked up once, when it is built).
 *
 * <p>The broker may hold {@code credit} jobs and requests outstanding on this worker (default
 * 4 x concurrency), so each handler thread has a few queued behind the one it runs.
 *
 * <p><b>Several brokers.</b> With an endpoint list the worker keeps one session (READY,
 * heartbeats, reconnection) with every broker and answers each job on the session it came from.
 * Its credit stays the total it holds: the brokers it is registered with share it
 * ({@code credit / n}, the remainder one each in list order rotated by a random offset per
 * worker), re-balanced whenever a session registers or is lost or jobs finish, giving out only
 * what no broker may still use (SPEC 2.4).
 */
public final class Worker implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.worker");
    private static final AtomicInteger SERIAL = new AtomicInteger();
    /** awaitReady looks this often whether the worker gave up instead. */
    private static final long READY_SLICE_NANOS = 50_000_000L;

    final String endpoint;
    final List<String> endpoints;
    final int credit;
    final Duration heartbeat;
    final String label;
    /** This machine's name, for READY; looked up once, so a slow resolver never holds the I/O thread. */
    final String host = hostName();
    final boolean batch;
    final ZContext context;
    /** Null: the NULL mechanism. */
    final CurveSettings curve;
    /** Why the worker gave up (set by the I/O thread before it ends); run() throws it. */
    volatile ZeromeshException failure;
    private final boolean ownContext;
    final Outbox<WorkerResult> outbox;
    /** The handlers, their executor, and the state handler tasks read (stopping, current connections). */
    final WorkerHandlers handlers;
    final CountDownLatch ioReady = new CountDownLatch(1);
    final CountDownLatch registered = new CountDownLatch(1);
    private final CountDownLatch done = new CountDownLatch(1);
    private Thread ioThread;

    /** Builder of a {@link Worker}. */
    public static final class Builder {
        private String endpoint = Defaults.BROKER_ENDPOINT;
        private int concurrency = Defaults.WORKER_CONCURRENCY;
        private Integer credit;
        private Duration heartbeat = Defaults.HEARTBEAT;
        private String label;
        private boolean batch = true;
        private ZContext context;
        private ExecutorService executor;
        private String curveServer;
        private Path curveSecret;

        private Builder() {}

        /**
         * The broker's CURVE public key: 40 Z85 characters or a certificate file holding it
         * ({@code broker.key}); or a comma-separated list of those, one per broker endpoint in the
         * order of {@link #endpoint}. Unset: ZEROMESH_CURVE_SERVER. Needs {@link #curveSecret};
         * checked by {@link #build}.
         */
        public Builder curveServer(String curveServer) {
            this.curveServer = Objects.requireNonNull(curveServer);
            return this;
        }

        /**
         * This worker's secret certificate ({@code NAME.key_secret}; its key needs the worker role
         * for the names it serves). Unset: ZEROMESH_CURVE_SECRET. Needs {@link #curveServer}.
         */
        public Builder curveSecret(Path curveSecret) {
            this.curveSecret = Objects.requireNonNull(curveSecret);
            return this;
        }

        /**
         * The broker endpoint, or several comma-separated (ZEROMESH_BROKER in programs): the worker
         * then keeps a session with each and splits its credit among them.
         *
         * @throws IllegalArgumentException an empty item in the list
         */
        public Builder endpoint(String endpoint) {
            Endpoints.parse(endpoint);
            this.endpoint = endpoint;
            return this;
        }

        /** Handler threads (default 4). Ignored for the thread count when an executor is given. */
        public Builder concurrency(int concurrency) {
            if (concurrency < 1) {
                throw new IllegalArgumentException("concurrency must be at least 1");
            }
            this.concurrency = concurrency;
            return this;
        }

        /**
         * Jobs and requests the brokers may have outstanding on this worker (default 4 x
         * concurrency), in total: with several brokers it is split among those it is registered with.
         */
        public Builder credit(int credit) {
            if (credit < 0) {
                throw new IllegalArgumentException("credit must not be negative");
            }
            this.credit = credit;
            return this;
        }

        /** Heartbeat interval; must match the broker's (default 1 s). */
        public Builder heartbeat(Duration heartbeat) {
            this.heartbeat = Objects.requireNonNull(heartbeat);
            return this;
        }

        /** A name for people, shown by the broker's status. */
        public Builder label(String label) {
            this.label = label;
            return this;
        }

        /**
         * Take first deliveries as JOB_PACKED or JOB_BATCH, many jobs under one header (default
         * true; SPEC.md 3.4, 3.5): READY then says both {@code batch} and {@code packed}. Handlers
         * see no difference: each job of a batch is handled as if it came alone.
         */
        public Builder batch(boolean batch) {
            this.batch = batch;
            return this;
        }

        /** A ZeroMQ context to share; the worker then leaves closing it to the caller. */
        public Builder context(ZContext context) {
            this.context = Objects.requireNonNull(context);
            return this;
        }

        /** Run handlers here instead of in a pool of {@code concurrency} threads; the caller shuts it down. */
        public Builder executor(ExecutorService executor) {
            this.executor = Objects.requireNonNull(executor);
            return this;
        }

        /**
         * @throws IllegalArgumentException a CURVE setting without the other, an unreadable
         *                                  certificate, one without a secret-key, a malformed key, or
         *                                  a number of server keys that is neither 1 nor one per endpoint
         */
        public Worker build() {
            return new Worker(this);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    private Worker(Builder b) {
        JeromqSignaler.warnIfUnpatched();
        this.endpoint = b.endpoint;
        this.endpoints = Endpoints.parse(b.endpoint);
        this.curve = CurveSettings.resolve(b.curveServer, b.curveSecret, endpoints.size(), System.getenv());
        this.credit = b.credit != null ? b.credit : 4 * b.concurrency;
        this.heartbeat = b.heartbeat;
        this.label = b.label;
        this.batch = b.batch;
        this.ownContext = b.context == null;
        this.context = ownContext ? new ZContext() : b.context;
        int serial = SERIAL.incrementAndGet();
        this.outbox = new Outbox<>(context, "inproc://zeromesh-worker-" + serial + "-" + System.nanoTime());
        this.handlers = new WorkerHandlers(b.executor, b.concurrency, serial, outbox);
    }

    /** Register {@code handler} for queue or service {@code name}; before {@link #start()} only. */
    public Worker handle(String name, Handler handler) {
        Client.checkName("name", name);
        Objects.requireNonNull(handler);
        synchronized (this) {
            if (ioThread != null) {
                throw new IllegalStateException("register handlers before start()");
            }
            handlers.put(name, handler);
        }
        return this;
    }

    List<String> names() {
        return handlers.names();
    }

    // -- traces ---------------------------------------------------------------

    /** The job or request whose handler runs in this thread; empty outside a handler. */
    public static Optional<Job> currentJob() {
        return Optional.ofNullable(Traces.current());
    }

    /**
     * {@code task} run with {@code job} as its thread's current job: for a thread a handler starts,
     * so that what the task pushes or requests joins the job's trace.
     * {@code executor.submit(Worker.carrying(job, () -> client.request("price", body)))}.
     */
    public static <T> Callable<T> carrying(Job job, Callable<T> task) {
        Objects.requireNonNull(job, "job");
        Objects.requireNonNull(task, "task");
        return () -> Traces.within(job, task);
    }

    /** InetAddress.getLocalHost().getHostName(), else env HOSTNAME, else "unknown"; at most 255 bytes. */
    static String hostName() {
        String name;
        try {
            name = InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException | SecurityException e) {
            name = System.getenv("HOSTNAME");
        }
        if (name == null || name.isEmpty()) {
            return "unknown";
        }
        while (!Schema.isName(name)) {
            name = name.substring(0, name.length() - 1);
        }
        return name;
    }

    // -- lifetime -------------------------------------------------------------

    /** Connect and serve in background threads; returns at once. */
    public synchronized Worker start() {
        if (ioThread != null) {
            throw new IllegalStateException("worker already started");
        }
        if (handlers.isEmpty()) {
            throw new IllegalStateException("register at least one handler before starting");
        }
        ioThread = new Thread(this::ioMain, "zeromesh-worker-io");
        ioThread.setDaemon(true);
        ioThread.start();
        try {
            if (!ioReady.await(10, TimeUnit.SECONDS)) {
                throw new ZeromeshException("error", "worker I/O thread did not start");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ZeromeshException("interrupted", "interrupted while starting");
        }
        return this;
    }

    /**
     * True once a broker has answered this worker's READY (so requests and jobs find it); false
     * after {@code timeout}, or when the worker stopped first.
     *
     * @throws ZeromeshException why the worker gave up before registering, as {@link #run()} throws it
     */
    public boolean awaitReady(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!registered.await(Math.min(READY_SLICE_NANOS, Math.max(0, deadline - System.nanoTime())),
                TimeUnit.NANOSECONDS)) {
            if (done.getCount() == 0) {
                if (failure != null) {
                    throw failure;
                }
                return false;
            }
            if (System.nanoTime() - deadline >= 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * Start if needed and serve until {@link #close()}; SIGTERM and SIGINT (through a JVM
     * shutdown hook) stop it gracefully within the default grace.
     *
     * @throws AuthenticationException every broker refused the worker's handshake for the connect
     *                                 timeout (1 s); a refusal by some is logged and retried
     * @throws ForbiddenException      a broker refused the READY: the key may not serve these names
     */
    public void run() throws InterruptedException {
        if (ioThread == null) {
            start();
        }
        Thread hook = new Thread(() -> close(Defaults.WORKER_GRACE), "zeromesh-worker-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            done.await();
            if (failure != null) {
                throw failure;
            }
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // the JVM is already shutting down: the hook is running
            }
        }
    }

    /** {@link #close(Duration)} with the default grace of 10 s. */
    @Override
    public void close() {
        close(Defaults.WORKER_GRACE);
    }

    /**
     * Stop gracefully: take no new work (CREDIT 0), let running handlers finish for up to
     * {@code grace}, answer them, then DISCONNECT (the broker hands unfinished jobs to other
     * workers) and return.
     */
    public void close(Duration grace) {
        Thread io;
        synchronized (this) {
            io = ioThread;
        }
        if (io != null && done.getCount() > 0) {
            outbox.put(new WorkerResult.Stop(grace.toNanos()));
            try {
                if (!done.await(grace.toMillis() + 5000, TimeUnit.MILLISECONDS)) {
                    LOG.log(Level.WARNING, "worker did not stop within {0} ms", grace.toMillis() + 5000);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        } else if (io == null) {
            shutdown();
        }
    }

    private void ioMain() {
        try {
            new WorkerIO(this).run();
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "worker I/O thread failed", e);
        } finally {
            handlers.stopping = true;
            ioReady.countDown();
            shutdown();
            done.countDown();
        }
    }

    private void shutdown() {
        handlers.shutdown();
        if (ownContext) {
            context.close();
        }
    }
}
