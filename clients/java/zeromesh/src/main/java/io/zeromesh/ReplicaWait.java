// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.List;
import redis.clients.jedis.AbstractPipeline;
import redis.clients.jedis.Protocol;
import redis.clients.jedis.Response;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.exceptions.JedisConnectionException;

/**
 * A confirmed push to a Redis list: RPUSH, then WAIT until enough replicas hold it (DESIGN16).
 * Replication is asynchronous, so without the WAIT a primary killed right after the RPUSH could
 * take a confirmed job with it.
 */
final class ReplicaWait {
    private final UnifiedJedis redis;
    /** Replicas a push must reach; null: 1 when the primary has replicas, else 0. */
    private final Integer minReplicas;
    /** What minReplicas null came to for the current primary; null until asked, again after a connection error. */
    private volatile Integer wanted;

    ReplicaWait(UnifiedJedis redis, Integer minReplicas) {
        if (minReplicas != null && minReplicas < 0) {
            throw new IllegalArgumentException("minReplicas must be at least 0");
        }
        this.redis = redis;
        this.minReplicas = minReplicas;
    }

    /**
     * RPUSH and, when replicas must have it, WAIT on the same connection (one pipeline: WAIT
     * counts the writes of its own connection). Too few replicas: ZeromeshException "unavailable";
     * the job stays in Redis but is not confirmed.
     */
    void rpush(String queue, byte[] key, byte[] element) {
        try {
            int n = wanted();
            if (n == 0) {
                redis.rpush(key, element);
                return;
            }
            long timeout = Defaults.REDIS_WAIT.toMillis();
            Response<Long> reached;
            try (AbstractPipeline p = redis.pipelined()) {
                p.rpush(key, element);
                reached = p.waitReplicas(key, n, timeout);
                p.sync();
            }
            if (reached.get() < n) {
                throw new ZeromeshException("unavailable", "queue " + queue + ": stored on " + reached.get() + " of "
                        + n + " replicas within " + timeout + " ms; the job stays in Redis but is not confirmed");
            }
        } catch (JedisConnectionException e) {
            wanted = null; // perhaps a new primary, with other replicas
            throw e;
        }
    }

    private int wanted() {
        if (minReplicas != null) {
            return minReplicas;
        }
        Integer known = wanted;
        if (known == null) {
            // ROLE on a primary: ["master", offset, [[ip, port, offset], ...]]
            Object role = redis.sendCommand(Protocol.Command.ROLE);
            known = role instanceof List<?> r && r.size() >= 3 && r.get(2) instanceof List<?> replicas
                    && !replicas.isEmpty() ? 1 : 0;
            wanted = known;
        }
        return known;
    }
}
