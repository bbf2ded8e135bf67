// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeoutException;
import org.zeromq.ZContext;

/**
 * A connection to a broker: push jobs, call services, publish, subscribe, administer.
 *
 * <p><b>Several brokers.</b> The endpoint may list several brokers, comma-separated. The client
 * then uses one at a time, starting on a random one, and moves to the next when its broker has
 * had no live connection for the failover time (3 s): unconfirmed pushes go to the new broker
 * with the same ids, a request in flight fails with {@link UnreachableException} unless it is
 * {@link RequestOption#IDEMPOTENT}. Subscriptions connect to every PUB endpoint of the list.
 *
 * <p><b>Thread-safe.</b> ZeroMQ sockets are not, so the client's DEALER belongs to one I/O
 * thread of its own ("zeromesh-client-io"); calls from any number of threads hand their messages
 * to it through a locked queue and an inproc doorbell, and wait on futures it completes. One
 * Client can therefore be shared by a whole application. {@link Subscription}s are the
 * exception: each owns a SUB socket and must stay in one thread.
 *
 * <p><b>Security.</b> With {@link Builder#curveServer} and {@link Builder#curveSecret} (else
 * ZEROMESH_CURVE_SERVER and ZEROMESH_CURVE_SECRET) every socket is a CURVE client of its broker
 * (SPEC.md 14.4). A broker that refuses the handshake fails the calls waiting for it at once with
 * {@link AuthenticationException} (with several brokers, once every one refuses); a command
 * outside the key's roles fails with {@link ForbiddenException}.
 *
 * <p><b>Later and once.</b> {@link #push(String, byte[], PushOptions)} takes a delay or an instant
 * (the job waits in the broker's Redis until then) and a unique key (a second job with the key
 * queues nothing and the push returns the first one's id). The queue controls are methods:
 * {@link #pause}, {@link #resume}, {@link #purgeQueue}, {@link #scheduled},
 * {@link #cancel}, {@link #schedules}.
 *
 * <p>Don't interrupt threads blocked in a call (it throws {@link ZeromeshException} "interrupted"
 * and the call's outcome is unknown). Close the client when no call is in progress; closing it
 * fails calls still waiting with code "closed", and closes subscriptions when the client owns
 * the ZeroMQ context.
 *
 * <pre>{@code
 * try (Client client = Client.builder().endpoint("tcp://127.0.0.1:5555").build()) {
 *     String jobId = client.push("thumbs", "cat.png".getBytes(UTF_8));
 *     byte[] answer = client.request("resize", body, Duration.ofSeconds(5));
 * }
 * }</pre>
 */
public final class Client extends PushCalls implements AutoCloseable {
    private final String endpoint;
    private final List<String> pubEndpoints;
    private final ZContext ctx;
    private final boolean ownContext;
    private final Duration requestMargin;
    private final int maxBody;
    private final ClientIO io;
    private final Thread ioThread;
    private final IdGenerator ids = new IdGenerator();
    private final ClientCalls calls;
    /** Null: the NULL mechanism. */
    private final CurveSettings curve;

    /** Builder of a {@link Client}; every setting has a default from {@link Defaults}. */
    public static final class Builder {
        private String endpoint = Defaults.BROKER_ENDPOINT;
        private String pubEndpoint = Defaults.PUB_ENDPOINT;
        private ZContext context;
        private Duration pushResend = Defaults.PUSH_RESEND;
        private Duration requestMargin = Defaults.REQUEST_MARGIN;
        private int maxBody = Defaults.MAX_MESSAGE;
        private Duration linger = Defaults.CLIENT_LINGER;
        private Duration connectTimeout = Defaults.CONNECT_TIMEOUT;
        private Duration failover = Defaults.FAILOVER;
        private String curveServer;
        private Path curveSecret;

        private Builder() {}

        /**
         * The broker's CURVE public key: 40 Z85 characters or a certificate file holding it
         * ({@code broker.key}); or a comma-separated list of those, one per broker endpoint in the
         * order of {@link #endpoint} (and of {@link #pubEndpoint}). Unset: ZEROMESH_CURVE_SERVER.
         * Needs {@link #curveSecret}; checked by {@link #build}.
         */
        public Builder curveServer(String curveServer) {
            this.curveServer = Objects.requireNonNull(curveServer);
            return this;
        }

        /**
         * This client's secret certificate ({@code NAME.key_secret}, as {@code zeromesh keys new}
         * writes it). Unset: ZEROMESH_CURVE_SECRET. Needs {@link #curveServer}; checked by
         * {@link #build}.
         */
        public Builder curveSecret(Path curveSecret) {
            this.curveSecret = Objects.requireNonNull(curveSecret);
            return this;
        }

        /**
         * The broker endpoint, or several comma-separated (ZEROMESH_BROKER in programs).
         *
         * @throws IllegalArgumentException an empty item in the list
         */
        public Builder endpoint(String endpoint) {
            Endpoints.parse(endpoint);
            this.endpoint = endpoint;
            return this;
        }

        /**
         * The PUB endpoint for {@link Client#subscribe}, or several comma-separated: a subscription
         * connects to each (ZEROMESH_PUB in programs).
         *
         * @throws IllegalArgumentException an empty item in the list
         */
        public Builder pubEndpoint(String pubEndpoint) {
            Endpoints.parse(pubEndpoint);
            this.pubEndpoint = pubEndpoint;
            return this;
        }

        /**
         * With several broker endpoints: how long the broker in use may have no live connection
         * before the client moves to the next one (default 3 s; ZEROMESH_FAILOVER_S in programs).
         */
        public Builder failover(Duration failover) {
            if (failover.isNegative() || failover.isZero()) {
                throw new IllegalArgumentException("failover must be positive");
            }
            this.failover = failover;
            return this;
        }

        /** A ZeroMQ context to share; the client then leaves closing it to the caller. */
        public Builder context(ZContext context) {
            this.context = Objects.requireNonNull(context);
            return this;
        }

        /** How long a push stays unconfirmed before it is sent again (same id). */
        public Builder pushResend(Duration pushResend) {
            this.pushResend = Objects.requireNonNull(pushResend);
            return this;
        }

        /** How long past a request's deadline to wait for the broker's own timeout ERROR. */
        public Builder requestMargin(Duration requestMargin) {
            this.requestMargin = Objects.requireNonNull(requestMargin);
            return this;
        }

        /** Bodies larger than this are refused before sending (the broker's ZEROMESH_MAX_MESSAGE). */
        public Builder maxBody(int maxBody) {
            this.maxBody = maxBody;
            return this;
        }

        /**
         * How long {@link Client#close()} waits for what was already sent (publishes, pushes) to
         * leave for the broker (default 1 s). Zero drops whatever has not left yet.
         */
        public Builder linger(Duration linger) {
            if (linger.isNegative()) {
                throw new IllegalArgumentException("linger must not be negative");
            }
            this.linger = linger;
            return this;
        }

        /**
         * How long a call (push, pushMany, request, admin, ping) waits without any live connection
         * to the broker before it fails with {@link UnreachableException} (default 1 s). A broker
         * that is connected but slow still gets the call's whole timeout.
         */
        public Builder connectTimeout(Duration connectTimeout) {
            if (connectTimeout.isNegative() || connectTimeout.isZero()) {
                throw new IllegalArgumentException("connectTimeout must be positive");
            }
            this.connectTimeout = connectTimeout;
            return this;
        }

        /**
         * @throws IllegalArgumentException a CURVE setting without the other, an unreadable
         *                                  certificate, one without a secret-key, a malformed key, or
         *                                  a number of server keys that is neither 1 nor one per endpoint
         */
        public Client build() {
            return new Client(this);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    private Client(Builder b) {
        JeromqSignaler.warnIfUnpatched();
        this.endpoint = b.endpoint;
        this.pubEndpoints = Endpoints.parse(b.pubEndpoint);
        this.curve = CurveSettings.resolve(b.curveServer, b.curveSecret, Endpoints.parse(endpoint).size(),
                System.getenv());
        this.ownContext = b.context == null;
        this.ctx = ownContext ? new ZContext() : b.context;
        this.requestMargin = b.requestMargin;
        this.maxBody = b.maxBody;
        Outbox<ClientOp> outbox = new Outbox<>(ctx, "inproc://zeromesh-client-" + ids.next());
        this.io = new ClientIO(ctx, Endpoints.parse(endpoint), curve, b.pushResend.toNanos(), Defaults.PUSH_BATCH, ids,
                outbox, b.linger.toMillis(), b.connectTimeout.toNanos(), b.failover.toNanos());
        this.calls = new ClientCalls(outbox);
        this.ioThread = new Thread(io, "zeromesh-client-io");
        ioThread.setDaemon(true);
        ioThread.start();
        Waits.await(io.started, Duration.ofSeconds(10));
    }

    /** The broker endpoint (or list) this client was built with. */
    @Override
    public String endpoint() {
        return endpoint;
    }

    /** The broker of the list this client uses now (it moves on when that one is lost). */
    public String currentBroker() {
        return io.current;
    }

    // -- request/reply --------------------------------------------------------

    /** {@link #request(String, byte[], Duration)} with the default 5 s deadline. */
    public byte[] request(String service, byte[] body) {
        return request(service, body, Defaults.REQUEST_TIMEOUT);
    }

    /**
     * Ask one worker of {@code service}; returns the reply body.
     *
     * @throws NoRespondersException    no worker serves {@code service}
     * @throws RemoteException          the handler failed (code "remote": name, message, remoteTraceback)
     * @throws ZeromeshTimeoutException the broker's deadline passed, or nothing came back within
     *                                 {@code timeout} plus the request margin (then a CANCEL is sent)
     */
    public byte[] request(String service, byte[] body, Duration timeout) {
        return requestFull(service, body, timeout, null, false).body();
    }

    /**
     * {@link #request(String, byte[], Duration)} with options, e.g. {@link RequestOption#IDEMPOTENT}.
     *
     * @throws UnreachableException the broker was lost with the request in flight (not idempotent),
     *                              or no broker of the list could be reached
     */
    public byte[] request(String service, byte[] body, Duration timeout, RequestOption... options) {
        return requestFull(service, body, timeout, null, false, options).body();
    }

    /**
     * The full form of {@link #request}: application {@code headers} for the worker, and
     * {@code wait} to queue the request until a worker of the service registers instead of
     * failing at once with no_responders. Returns the body with the reply's headers.
     */
    public Reply requestFull(String service, byte[] body, Duration timeout, Map<String, ?> headers, boolean wait,
            RequestOption... options) {
        checkName("service", service);
        checkBody(body);
        String rid = ids.next();
        long deadline = System.nanoTime() + timeout.toNanos();
        // In a handler's thread the request joins the handled message's trace (Traces).
        ClientOp.Again frames = ClientFrames.request(service, body, headers, wait, Traces.fields(Map.of()));
        boolean idempotent = Arrays.asList(options).contains(RequestOption.IDEMPOTENT);
        Item answer = calls.call(new ClientOp.Call(rid, frames.frames(rid, timeout.toMillis()), new CompletableFuture<>(),
                idempotent ? frames : null, deadline), timeout.plus(requestMargin));
        if (answer == null) {
            calls.submit(new ClientOp.Send(Codec.packControl(Wire.CANCEL, Map.of("id", ids.next(), "re", rid))));
            throw new ZeromeshTimeoutException("no answer from '" + service + "' within " + timeout.toMillis()
                    + " ms (is the broker at " + endpoint + " up?)");
        }
        return new Reply(answer.body(), ClientFrames.replyHeaders(answer));
    }

    // -- pub/sub --------------------------------------------------------------

    /** Publish one event, at most once and never confirmed; returns its id. */
    public String publish(String topic, byte[] body) {
        return publish(topic, body, null);
    }

    public String publish(String topic, byte[] body, Map<String, ?> headers) {
        checkName("topic", topic);
        checkBody(body);
        String eid = ids.next();
        calls.submit(new ClientOp.Send(ClientFrames.publish(eid, topic, body, headers)));
        return eid;
    }

    /**
     * A new {@link Subscription} to topics starting with any of {@code prefixes} (none: every
     * topic), on its own SUB socket connected to every PUB endpoint (with the client's CURVE
     * settings). Use it in one thread only.
     *
     * @throws IllegalArgumentException several CURVE server keys, but not one per PUB endpoint
     */
    public Subscription subscribe(String... prefixes) {
        calls.ensureOpen();
        return new Subscription(ctx, pubEndpoints, Arrays.asList(prefixes), curve);
    }

    // -- admin ----------------------------------------------------------------

    /**
     * Run an admin operation (SPEC.md section 12); returns the reply map. The queue controls
     * (pause, resume, purgeQueue, scheduled, cancel, schedules) are methods of their own.
     *
     * @throws RemoteException the broker refused it (unknown_op, not_found, bad_header)
     */
    @Override
    public Map<String, Object> admin(String op, Map<String, ?> args, Duration timeout) {
        String rid = ids.next();
        Item answer = calls.call(rid, ClientFrames.admin(rid, op, args), timeout);
        if (answer == null) {
            throw new ZeromeshTimeoutException("admin '" + op + "': no answer from " + endpoint + " within "
                    + timeout.toMillis() + " ms");
        }
        return ClientFrames.adminAnswer(op, answer);
    }

    /** Round trip to the broker (HEARTBEAT answered by HEARTBEAT); returns its epoch. */
    public String ping(Duration timeout) {
        String id = ids.next();
        // A ping is harmless to repeat: after a move to another broker it pings that one.
        ClientOp.Again again = (newId, ms) -> Codec.packControl(Wire.HEARTBEAT, Map.of("id", newId));
        Item answer = calls.call(new ClientOp.Call(ClientIO.PING_PREFIX + id, again.frames(id, 0), new CompletableFuture<>(),
                again, System.nanoTime() + timeout.toNanos()), timeout);
        if (answer == null) {
            throw new ZeromeshTimeoutException("no answer from the broker at " + endpoint + " within "
                    + timeout.toMillis() + " ms");
        }
        return answer.header().get("epoch") instanceof String s ? s : "";
    }

    // -- lifetime -------------------------------------------------------------

    /**
     * Stop the I/O thread and, if owned, the context. What was already sent (publishes, pushes)
     * goes out first, for up to the linger (1 s by default); with a shared context the linger runs
     * after this returns, until the caller closes that context.
     */
    @Override
    public void close() {
        if (!calls.close()) {
            return;
        }
        io.outbox.put(new ClientOp.Close());
        Waits.await(io.done, Duration.ofSeconds(5));
        if (ownContext) {
            ctx.close();
        }
    }

    // -- helpers --------------------------------------------------------------

    @Override
    IdGenerator ids() {
        return ids;
    }

    @Override
    ClientCalls calls() {
        return calls;
    }

    @Override
    void checkBody(byte[] body) {
        Objects.requireNonNull(body, "body");
        if (body.length > maxBody) {
            throw new ZeromeshException(Wire.E_TOO_LARGE, "body of " + body.length + " bytes exceeds the limit of "
                    + maxBody);
        }
    }

    static void checkName(String what, String name) {
        if (name == null || !Schema.isName(name)) {
            throw new IllegalArgumentException("a " + what + " must be 1.." + Wire.MAX_NAME_BYTES + " bytes of UTF-8");
        }
    }
}
