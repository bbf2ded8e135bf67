// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.parallel.Isolated;

/**
 * RedisQueue over redis+sentinel:// against real processes: a primary, a replica and three
 * sentinels. The primary is SIGKILLed between pushes; the same RedisQueue works again once a
 * replica is promoted, and every push it confirmed is taken afterwards.
 */
// Isolated: its sentinels find each other by gossip on a timer; beside other classes' brokers and
// Redis servers it once missed its 30 s for that (the suite runs three classes at a time).
@Isolated
class SentinelFailoverTest {

    @Test
    void theQueueFollowsAFailoverAndLosesNoConfirmedPush() {
        assertTimeoutPreemptively(TestSupport.seconds(90), () -> {
            try (SentinelGroup redis = new SentinelGroup();
                    RedisQueue queue = RedisQueue.fromUrl(redis.url(), "jobs");
                    RedisQueue.Consumer consumer = queue.consumer("java-" + ProcessHandle.current().pid())) {
                Set<String> confirmed = new HashSet<>();
                Map<String, Integer> handled = new HashMap<>();
                for (int i = 0; i < 100; i++) {
                    confirmed.add(queue.push(("before " + i).getBytes(UTF_8)));
                }
                takeAll(consumer, handled, 20, Duration.ofSeconds(2));
                assertEquals(20, handled.size(), "taken through the first primary");

                long killed = System.nanoTime();
                redis.killPrimary();
                int failedPushes = 0;
                long back = 0;
                long bound = TestSupport.seconds(30).toNanos();
                while (back == 0) {
                    try {
                        confirmed.add(queue.push("during".getBytes(UTF_8)));
                        back = System.nanoTime();
                    } catch (RuntimeException e) { // no primary yet: the push is not confirmed
                        failedPushes++;
                        assertTrue(System.nanoTime() - killed < bound, "no push confirmed within 30 s of the kill: " + e);
                        Thread.sleep(50);
                    }
                }
                assertTrue(redis.replicaPromoted(), "a push was confirmed, so the replica must be the primary now");
                for (int i = 0; i < 100; i++) {
                    confirmed.add(queue.push(("after " + i).getBytes(UTF_8)));
                }
                takeAll(consumer, handled, Integer.MAX_VALUE, Duration.ofMillis(500));

                List<String> lost = new ArrayList<>(confirmed);
                lost.removeAll(handled.keySet());
                long duplicates = handled.values().stream().filter(n -> n > 1).count();
                System.out.printf("sentinel failover: confirmed=%d handled=%d duplicates=%d lost=%d "
                        + "failed pushes while no primary=%d back after %.1f s%n", confirmed.size(), handled.size(),
                        duplicates, lost.size(), failedPushes, (back - killed) / 1e9);
                assertEquals(List.of(), lost, "every confirmed push is taken after the failover");
                assertEquals(201, confirmed.size());
            }
        });
    }

    /** Take and ack up to {@code max} jobs, stopping when none comes within {@code idle}; counts deliveries per id. */
    private static void takeAll(RedisQueue.Consumer consumer, Map<String, Integer> handled, int max, Duration idle) {
        for (int n = 0; n < max; n++) {
            Optional<RedisJob> job = consumer.take(idle);
            if (job.isEmpty()) {
                return;
            }
            handled.merge(job.get().id(), 1, Integer::sum);
            consumer.ack(job.get());
        }
    }
}
