// SPDX-License-Identifier: MIT
package io.zeromesh;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.ToNumberPolicy;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.args.ListDirection;

/**
 * One zeromesh queue in Redis, used directly (SPEC.md section 16): produce with RPUSH, consume
 * reliably through a per-consumer in-flight list, recover the jobs of dead consumers.
 *
 * <pre>{@code
 * RedisQueue mail = RedisQueue.fromUrl(System.getenv("ZEROMESH_REDIS_URL"), "mail"); // closes its client
 * mail.push("hello ann".getBytes(UTF_8));
 * try (RedisQueue.Consumer c = mail.consumer("host-" + ProcessHandle.current().pid())) {
 *     c.take(Duration.ofSeconds(5)).ifPresent(job -> {
 *         try { send(job.body()); c.ack(job); } catch (Exception e) { c.fail(job, WorkerHandlers.describe(e)); }
 *     });
 * }
 * }</pre>
 *
 * <p><b>Thread-safe</b> when the Jedis client is (JedisPooled is: each command borrows a
 * connection). A Consumer may be shared by threads too; its heartbeat runs in a daemon thread.
 *
 * <p>Under Sentinel ({@code redis+sentinel://}, see {@link RedisUrls}) the client follows a failover
 * by itself; commands sent while no primary is elected fail with JedisConnectionException, and the
 * same calls work again once the sentinels have promoted a replica. A push is confirmed only when
 * the primary and at least min_replicas replicas hold it (WAIT), since replication is asynchronous
 * and a primary killed right after an unreplicated RPUSH takes the job with it.
 */
public final class RedisQueue implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.redis");
    private static final String PREFIX = "zeromesh:";
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping()
            .setObjectToNumberStrategy(ToNumberPolicy.LONG_OR_DOUBLE).create();

    static final byte[] FAIL_SCRIPT = script("fail.lua").getBytes(StandardCharsets.UTF_8);

    private final UnifiedJedis redis;
    private final String name;
    private final boolean raw;
    private final int maxAttempts;
    private final boolean ownsRedis;
    private final ReplicaWait replicas;
    private final DeadConsumerRecovery recovery;
    private final IdGenerator ids = new IdGenerator();
    /** Raw elements carry no attempt count: failures are counted here, as the broker counts them in memory. */
    private final Map<ByteBuffer, Long> rawFailures = new ConcurrentHashMap<>();

    /** An envelope queue with the default of 5 attempts. */
    public RedisQueue(UnifiedJedis redis, String name) {
        this(redis, name, false, Defaults.REDIS_MAX_ATTEMPTS);
    }

    /**
     * @param raw         true for a raw queue (elements are the bodies themselves)
     * @param maxAttempts deliveries before a failing job is dead-lettered
     */
    public RedisQueue(UnifiedJedis redis, String name, boolean raw, int maxAttempts) {
        this(redis, name, raw, maxAttempts, null, false);
    }

    /**
     * @param minReplicas replicas each push must reach (WAIT); null: 1 when the primary has
     *                    connected replicas, else 0
     */
    public RedisQueue(UnifiedJedis redis, String name, boolean raw, int maxAttempts, Integer minReplicas) {
        this(redis, name, raw, maxAttempts, minReplicas, false);
    }

    private RedisQueue(UnifiedJedis redis, String name, boolean raw, int maxAttempts, Integer minReplicas,
            boolean ownsRedis) {
        this.redis = Objects.requireNonNull(redis, "redis");
        this.ownsRedis = ownsRedis;
        this.replicas = new ReplicaWait(redis, minReplicas);
        Client.checkName("queue", name);
        if (maxAttempts < 1) {
            throw new IllegalArgumentException("maxAttempts must be at least 1");
        }
        this.name = name;
        this.raw = raw;
        this.maxAttempts = maxAttempts;
        this.recovery = new DeadConsumerRecovery(redis, this, raw, maxAttempts);
    }

    /** An envelope queue over a client of its own for {@code url} (ZEROMESH_REDIS_URL, {@link RedisUrls}). */
    public static RedisQueue fromUrl(String url, String name) {
        return fromUrl(url, name, false, Defaults.REDIS_MAX_ATTEMPTS);
    }

    /**
     * A queue over a client of its own for {@code url}, closed by {@link #close()}; the URL's
     * min_replicas option, if any, sets the replicas a push must reach.
     */
    public static RedisQueue fromUrl(String url, String name, boolean raw, int maxAttempts) {
        Integer minReplicas = RedisUrls.minReplicas(url); // checks the URL before connecting
        UnifiedJedis client = RedisUrls.connect(url);
        try {
            return new RedisQueue(client, name, raw, maxAttempts, minReplicas, true);
        } catch (RuntimeException e) {
            client.close();
            throw e;
        }
    }

    /** Closes the Redis client if this queue made it ({@link #fromUrl}); a client passed in stays open. */
    @Override
    public void close() {
        if (ownsRedis) {
            redis.close();
        }
    }

    public String name() {
        return name;
    }

    byte[] queueKey() {
        return bytes(PREFIX + "queue:" + name);
    }

    byte[] deadKey() {
        return bytes(PREFIX + "dead:" + name);
    }

    String consumersKey() {
        return PREFIX + "consumers:" + name;
    }

    byte[] inflightKey(String consumer) {
        return bytes(PREFIX + "inflight:" + name + ":" + consumer);
    }

    // -- producing ------------------------------------------------------------

    /** RPUSH one job; returns its id (null on a raw queue, which keeps none). */
    public String push(byte[] body) {
        return push(body, null);
    }

    /** RPUSH one job with application headers (envelope queues only); returns its id. */
    public String push(byte[] body, Map<String, ?> headers) {
        Objects.requireNonNull(body, "body");
        if (raw) {
            if (headers != null && !headers.isEmpty()) {
                throw new IllegalArgumentException("a raw queue keeps no headers");
            }
            replicas.rpush(name, queueKey(), body);
            return null;
        }
        String id = ids.next();
        JsonObject envelope = new JsonObject();
        envelope.addProperty("id", id);
        putBody(envelope, body);
        if (headers != null && !headers.isEmpty()) {
            envelope.add("headers", GSON.toJsonTree(headers));
        }
        replicas.rpush(name, queueKey(), bytes(GSON.toJson(envelope)));
        return id;
    }

    // -- recovery -------------------------------------------------------------

    /** What {@link #recover} did: jobs put back at the queue's head, and jobs dead-lettered. */
    public record Recovered(long requeued, long deadLettered) {}

    /** {@link #recover(Duration)} with the default recovery timeout of 30 s. */
    public Recovered recover() {
        return recover(Defaults.REDIS_RECOVERY_TIMEOUT);
    }

    /**
     * Take back the in-flight jobs of every consumer whose heartbeat is older than {@code olderThan}
     * and forget those consumers: one atomic script call per consumer, which moves nothing if the
     * consumer has beaten since it was read as dead. A consumer's death counts as a failed attempt
     * of each job it held, as a handler's failure does: an envelope gets attempt + 1 and the error
     * "consumer C lost: no heartbeat" and goes back to the head of the queue (oldest first), or to
     * the dead letters once attempt reaches maxAttempts. Raw elements carry no count and go back
     * unchanged.
     */
    public Recovered recover(Duration olderThan) {
        return recovery.recover(nowSeconds() - olderThan.toMillis() / 1000.0);
    }

    /** A reliable consumer named {@code consumer} (unique per process, e.g. host-pid; not starting with ':'). */
    public Consumer consumer(String consumer) {
        return new Consumer(consumer, Defaults.REDIS_HEARTBEAT);
    }

    // -- consuming ------------------------------------------------------------

    /** Takes jobs into its own in-flight list and heartbeats in a daemon thread until closed. */
    public final class Consumer implements AutoCloseable {
        private final String consumer;
        private final byte[] inflight;
        private final ScheduledExecutorService beats;

        private Consumer(String consumer, Duration heartbeat) {
            if (consumer == null || consumer.isEmpty() || consumer.startsWith(":")) {
                throw new IllegalArgumentException("a consumer name is a non-empty string not starting with ':'");
            }
            this.consumer = consumer;
            this.inflight = inflightKey(consumer);
            heartbeat(); // before the first take (SPEC.md 16.1)
            this.beats = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "zeromesh-redis-heartbeat-" + consumer);
                t.setDaemon(true);
                return t;
            });
            long ms = heartbeat.toMillis();
            beats.scheduleAtFixedRate(this::beatQuietly, ms, ms, TimeUnit.MILLISECONDS);
        }

        public String name() {
            return consumer;
        }

        /** ZADD this consumer's liveness now (done every 5 s anyway). */
        public void heartbeat() {
            redis.zadd(consumersKey(), nowSeconds(), consumer);
        }

        private void beatQuietly() {
            try {
                heartbeat();
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "redis heartbeat of {0} failed: {1}", consumer, e.toString());
            }
        }

        /**
         * BLMOVE the oldest job into this consumer's in-flight list, waiting up to {@code timeout};
         * empty if none came. Malformed envelopes are dead-lettered on the way and never returned.
         */
        public java.util.Optional<RedisJob> take(Duration timeout) {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                double wait = Math.max(0, deadline - System.nanoTime()) / 1e9;
                // BLMOVE's timeout 0 means forever: wait at least 1 ms instead.
                byte[] element = redis.blmove(queueKey(), inflight, ListDirection.LEFT, ListDirection.RIGHT,
                        Math.max(0.001, wait));
                if (element == null) {
                    return java.util.Optional.empty();
                }
                RedisJob job = parse(element);
                if (job != null) {
                    return java.util.Optional.of(job);
                }
                if (System.nanoTime() - deadline >= 0) {
                    return java.util.Optional.empty();
                }
            }
        }

        /** The job succeeded: LREM it from the in-flight list. */
        public void ack(RedisJob job) {
            redis.lrem(inflight, 1, job.element());
            if (job.raw()) {
                rawFailures.remove(ByteBuffer.wrap(job.element()));
            }
        }

        /**
         * The job failed: with attempt + 1 and {@code error}, back to the tail of the queue, or to
         * the dead letters once it has been delivered maxAttempts times; atomically with its LREM.
         */
        public void fail(RedisJob job, String error) {
            long deliveries = job.deliveries() + 1;
            if (job.raw()) {
                ByteBuffer key = ByteBuffer.wrap(job.element());
                deliveries = rawFailures.merge(key, 1L, Long::sum);
                if (deliveries < maxAttempts) {
                    move(job.element(), queueKey(), job.element());
                    return;
                }
                rawFailures.remove(key);
            }
            JsonObject envelope = job.raw() ? rawEnvelope(job.body()) : job.envelope().deepCopy();
            envelope.addProperty("id", job.id());
            envelope.addProperty("attempt", deliveries);
            envelope.addProperty("error", error == null ? "" : error);
            boolean dead = deliveries >= maxAttempts;
            if (dead) {
                envelope.addProperty("queue", name);
                envelope.addProperty("dead_ms", System.currentTimeMillis());
                LOG.log(Level.WARNING, "queue {0}: job {1} dead-lettered after {2} attempt(s): {3}", name, job.id(),
                        deliveries, error);
            }
            move(job.element(), dead ? deadKey() : queueKey(), bytes(GSON.toJson(envelope)));
        }

        /** Push the new element only if the old one was still ours (fail.lua, SPEC.md 16.3 step 4): had
         * recovery moved the job back to the queue meanwhile, a plain LREM + RPUSH would queue it twice. */
        private void move(byte[] old, byte[] target, byte[] element) {
            redis.eval(FAIL_SCRIPT, List.of(inflight, target), List.of(old, element));
        }

        /** An element from the queue as a job; a malformed envelope goes to the dead letters and gives null. */
        private RedisJob parse(byte[] element) {
            if (raw) {
                return new RedisJob(name, element, null, ids.next(), element, Map.of(), 0, null);
            }
            String problem;
            try {
                JsonElement json = Envelopes.strictJson(Msgpack.utf8(element));
                problem = json.isJsonObject() ? Envelopes.problem(json.getAsJsonObject()) : "not a JSON object";
                if (problem == null) {
                    JsonObject env = json.getAsJsonObject();
                    byte[] body = env.has("body") ? bytes(env.get("body").getAsString())
                            : Base64.getDecoder().decode(env.get("body_b64").getAsString());
                    String id = Envelopes.present(env, "id") ? env.get("id").getAsString() : ids.next();
                    @SuppressWarnings("unchecked")
                    Map<String, Object> headers = Envelopes.present(env, "headers")
                            ? GSON.fromJson(env.get("headers"), Map.class) : Map.of();
                    long attempt = Envelopes.present(env, "attempt") ? env.get("attempt").getAsLong() : 0;
                    String error = Envelopes.present(env, "error") ? env.get("error").getAsString() : null;
                    return new RedisJob(name, element, env, id, body, headers, attempt, error);
                }
            } catch (JsonParseException | IllegalArgumentException | IllegalStateException | ProtocolException e) {
                problem = e.getMessage();
            }
            JsonObject dead = rawEnvelope(element);
            dead.addProperty("error", "malformed envelope: " + problem);
            dead.addProperty("attempt", 0);
            dead.addProperty("queue", name);
            dead.addProperty("dead_ms", System.currentTimeMillis());
            LOG.log(Level.WARNING, "queue {0}: malformed envelope dead-lettered: {1}", name, problem);
            move(element, deadKey(), bytes(GSON.toJson(dead)));
            return null;
        }

        /** Stop heartbeating; forget this consumer if it holds nothing (else recover() will, later). */
        @Override
        public void close() {
            beats.shutdownNow();
            if (redis.llen(inflight) == 0) {
                redis.zrem(consumersKey(), consumer);
            }
        }
    }

    /** An envelope whose body is {@code bytes}: body when valid UTF-8, else body_b64. */
    private static JsonObject rawEnvelope(byte[] bytes) {
        JsonObject env = new JsonObject();
        putBody(env, bytes);
        return env;
    }

    private static void putBody(JsonObject env, byte[] body) {
        try {
            env.addProperty("body", Msgpack.utf8(body));
        } catch (ProtocolException notUtf8) {
            env.addProperty("body_b64", Base64.getEncoder().encodeToString(body));
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** A Lua script of protocol/redis, from the classpath (io/zeromesh/redis/FILE). */
    static String script(String file) {
        String resource = "redis/" + file; // relative to this class's package
        try (java.io.InputStream in = RedisQueue.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("resource io/zeromesh/" + resource + " is missing from the jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read resource io/zeromesh/" + resource, e);
        }
    }

    private static double nowSeconds() {
        return System.currentTimeMillis() / 1000.0;
    }
}
