// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.util.List;
import redis.clients.jedis.UnifiedJedis;

/**
 * Takes back the in-flight jobs of a queue's dead consumers (SPEC.md 16.3) for {@link RedisQueue#recover}.
 * It reads the consumers whose heartbeat is older than a cutoff (ZRANGEBYSCORE), then recovers
 * each with one call of protocol/redis/recover_dead.lua. The script takes every key it touches in
 * KEYS, so Redis Cluster could route it, and checks the heartbeat again: a consumer that beat
 * after the read keeps its jobs, and when several recover at once exactly one moves them.
 */
final class DeadConsumerRecovery {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.redis");

    /** protocol/redis/recover_dead.lua, which the build copies into the jar (RedisQueueTest checks it). */
    static final String SCRIPT = RedisQueue.script("recover_dead.lua");
    private static final byte[] SCRIPT_BYTES = SCRIPT.getBytes(StandardCharsets.UTF_8);

    private final UnifiedJedis redis;
    private final RedisQueue queue;
    private final byte[] kind;
    private final int maxAttempts;

    DeadConsumerRecovery(UnifiedJedis redis, RedisQueue queue, boolean raw, int maxAttempts) {
        this.redis = redis;
        this.queue = queue;
        this.kind = bytes(raw ? "raw" : "envelope");
        this.maxAttempts = maxAttempts;
    }

    /** Every consumer of the queue whose heartbeat is at or before {@code cutoff} (unix seconds). */
    RedisQueue.Recovered recover(double cutoff) {
        long requeued = 0;
        long buried = 0;
        String at = Double.toString(cutoff);
        for (String consumer : redis.zrangeByScore(queue.consumersKey(), "-inf", at)) {
            RedisQueue.Recovered one = recoverConsumer(consumer, at);
            requeued += one.requeued();
            buried += one.deadLettered();
        }
        if (buried > 0) {
            LOG.log(Level.WARNING, "queue {0}: {1} job(s) of dead consumers dead-lettered at {2} attempt(s)",
                    queue.name(), buried, maxAttempts);
        }
        return new RedisQueue.Recovered(requeued, buried);
    }

    /** One consumer found silent at {@code cutoff}; nothing moves if it has beaten since. */
    RedisQueue.Recovered recoverConsumer(String consumer, String cutoff) {
        List<byte[]> keys = List.of(bytes(queue.consumersKey()), queue.inflightKey(consumer), queue.queueKey(),
                queue.deadKey());
        List<byte[]> args = List.of(bytes(cutoff), bytes(consumer), bytes(queue.name()), kind,
                bytes(Integer.toString(maxAttempts)));
        Object result = redis.eval(SCRIPT_BYTES, keys, args);
        if (!(result instanceof List<?> counts) || counts.size() != 2
                || !(counts.get(0) instanceof Long requeued) || !(counts.get(1) instanceof Long buried)) {
            throw new ZeromeshException("error", "RECOVER_DEAD answered " + result + ", not {requeued, dead_lettered}");
        }
        return new RedisQueue.Recovered(requeued, buried);
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
