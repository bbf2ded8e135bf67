// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.JedisPooled;
import redis.clients.jedis.args.ListDirection;

/** RedisQueue against a private redis-server: the SPEC.md section 16 layout, key by key. */
class RedisQueueTest {
    static RedisServer server;
    JedisPooled redis;

    @BeforeAll
    static void startRedis() throws Exception {
        server = new RedisServer(TestSupport.logDir());
    }

    @AfterAll
    static void stopRedis() throws Exception {
        if (server != null) {
            server.close();
        }
    }

    @BeforeEach
    void clean() {
        redis = server.jedis;
        redis.flushAll();
    }

    private static JsonObject json(String s) {
        return JsonParser.parseString(s).getAsJsonObject();
    }

    private static Duration s(double seconds) {
        return TestSupport.seconds(seconds);
    }

    @Test
    void pushTakeAckFollowsTheLayout() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "mail");
            String id = q.push("hello ann".getBytes(UTF_8), Map.of("lang", "en"));
            List<String> queued = redis.lrange("zeromesh:queue:mail", 0, -1);
            assertEquals(1, queued.size());
            JsonObject env = json(queued.get(0));
            assertEquals(id, env.get("id").getAsString());
            assertEquals("hello ann", env.get("body").getAsString());
            assertEquals("en", env.getAsJsonObject("headers").get("lang").getAsString());
            assertFalse(queued.get(0).contains("\n"), "one line");

            try (RedisQueue.Consumer c = q.consumer("host-1")) {
                assertTrue(redis.zscore("zeromesh:consumers:mail", "host-1") != null, "ZADD before the first take");
                RedisJob job = c.take(Duration.ofSeconds(2)).orElseThrow();
                assertEquals(id, job.id());
                assertEquals("hello ann", job.text());
                assertEquals(Map.of("lang", "en"), job.headers());
                assertEquals(1, job.attempt());
                assertNull(job.error());
                assertEquals(0, redis.llen("zeromesh:queue:mail"));
                assertEquals(1, redis.llen("zeromesh:inflight:mail:host-1"), "held in the in-flight list");
                c.ack(job);
                assertEquals(0, redis.llen("zeromesh:inflight:mail:host-1"), "LREM on success");
                assertTrue(c.take(Duration.ofMillis(50)).isEmpty());
            }
            assertNull(redis.zscore("zeromesh:consumers:mail", "host-1"), "a consumer holding nothing leaves the set");
        });
    }

    @Test
    void bashProducersAndBinaryBodies() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "mix");
            redis.rpush("zeromesh:queue:mix", "{\"body\": \"from bash\", \"extra\": [1, 2]}");
            byte[] binary = {(byte) 0xff, 0, 1};
            q.push(binary);
            assertEquals("/wAB", json(redis.lindex("zeromesh:queue:mix", 1)).get("body_b64").getAsString());
            try (RedisQueue.Consumer c = q.consumer("host-2")) {
                RedisJob bash = c.take(Duration.ofSeconds(1)).orElseThrow();
                assertEquals("from bash", bash.text());
                assertFalse(bash.id().isEmpty(), "the consumer assigns an id");
                RedisJob bin = c.take(Duration.ofSeconds(1)).orElseThrow();
                assertArrayEquals(binary, bin.body());
                c.ack(bash);
                c.ack(bin);
            }
        });
    }

    @Test
    void failureCountsAnAttemptAndRequeuesAtTheTail() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "work");
            String first = q.push("a".getBytes(UTF_8));
            String second = q.push("b".getBytes(UTF_8));
            try (RedisQueue.Consumer c = q.consumer("host-3")) {
                RedisJob job = c.take(Duration.ofSeconds(1)).orElseThrow();
                assertEquals(first, job.id());
                c.fail(job, "java.io.IOException: disk full");
                assertEquals(0, redis.llen("zeromesh:inflight:work:host-3"));
                JsonObject requeued = json(redis.lindex("zeromesh:queue:work", -1));
                assertEquals(first, requeued.get("id").getAsString());
                assertEquals(1, requeued.get("attempt").getAsInt());
                assertEquals("java.io.IOException: disk full", requeued.get("error").getAsString());
                assertEquals(second, c.take(Duration.ofSeconds(1)).orElseThrow().id(), "tail: b goes first");
                RedisJob retry = c.take(Duration.ofSeconds(1)).orElseThrow();
                assertEquals(first, retry.id());
                assertEquals(2, retry.attempt());
                assertEquals("java.io.IOException: disk full", retry.error());
            }
        });
    }

    @Test
    void fifthFailureDeadLetters() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "doomed");
            String id = q.push("x".getBytes(UTF_8));
            try (RedisQueue.Consumer c = q.consumer("host-4")) {
                for (int attempt = 1; attempt <= 5; attempt++) {
                    RedisJob job = c.take(Duration.ofSeconds(1)).orElseThrow();
                    assertEquals(attempt, job.attempt());
                    c.fail(job, "boom " + attempt);
                }
                assertTrue(c.take(Duration.ofMillis(50)).isEmpty());
            }
            assertEquals(0, redis.llen("zeromesh:queue:doomed"));
            List<String> dead = redis.lrange("zeromesh:dead:doomed", 0, -1);
            assertEquals(1, dead.size());
            JsonObject env = json(dead.get(0));
            assertEquals(id, env.get("id").getAsString());
            assertEquals(5, env.get("attempt").getAsInt());
            assertEquals("boom 5", env.get("error").getAsString());
            assertEquals("doomed", env.get("queue").getAsString());
            long sinceDead = System.currentTimeMillis() - env.get("dead_ms").getAsLong();
            assertTrue(sinceDead >= 0 && sinceDead < 60_000, "dead_ms is when it was dead-lettered: " + sinceDead);
            assertEquals("x", env.get("body").getAsString());
        });
    }

    @Test
    void malformedEnvelopesAreDeadLetteredNotDelivered() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "strict");
            redis.rpush("zeromesh:queue:strict", "not json", "{\"body\": \"a\", \"body_b64\": \"YQ==\"}", "[1]",
                    "{body: 'lenient'}", "{\"body\": \"a\"} trailing");
            q.push("good".getBytes(UTF_8));
            try (RedisQueue.Consumer c = q.consumer("host-5")) {
                RedisJob job = c.take(Duration.ofSeconds(1)).orElseThrow();
                assertEquals("good", job.text());
                c.ack(job);
            }
            List<String> dead = redis.lrange("zeromesh:dead:strict", 0, -1);
            assertEquals(5, dead.size());
            assertEquals("not json", json(dead.get(0)).get("body").getAsString());
            for (String d : dead) {
                assertTrue(json(d).get("error").getAsString().startsWith("malformed envelope"), d);
            }
            assertEquals(0, redis.llen("zeromesh:inflight:strict:host-5"));
        });
    }

    @Test
    void aJobRecoveredWhileItRanIsNotQueuedTwiceWhenItFails() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "slow");
            q.push("once".getBytes(UTF_8));
            try (RedisQueue.Consumer c = q.consumer("slowpoke")) {
                RedisJob job = c.take(Duration.ofSeconds(1)).orElseThrow();
                // Meanwhile this consumer looked dead, and recovery put its job back in the queue.
                redis.zadd("zeromesh:consumers:slow", System.currentTimeMillis() / 1000.0 - 60, "slowpoke");
                assertEquals(new RedisQueue.Recovered(1, 0), q.recover(Duration.ofSeconds(30)));
                c.fail(job, "failed late");
                assertEquals(1, redis.llen("zeromesh:queue:slow"), "one copy: the recovered one");
            }
        });
    }

    @Test
    void recoverMovesDeadConsumersJobsToTheHead() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "rec");
            String a = q.push("a".getBytes(UTF_8));
            String b = q.push("b".getBytes(UTF_8));
            String later = q.push("later".getBytes(UTF_8));
            RedisQueue.Consumer crashed = q.consumer("crashed");
            assertEquals(a, crashed.take(Duration.ofSeconds(1)).orElseThrow().id());
            assertEquals(b, crashed.take(Duration.ofSeconds(1)).orElseThrow().id());
            crashed.close(); // stops heartbeating, holds 2 jobs: stays in the set until recovered
            assertTrue(redis.zscore("zeromesh:consumers:rec", "crashed") != null);
            assertEquals(new RedisQueue.Recovered(0, 0), q.recover(), "a fresh heartbeat is alive");
            redis.zadd("zeromesh:consumers:rec", System.currentTimeMillis() / 1000.0 - 60, "crashed");
            assertEquals(new RedisQueue.Recovered(2, 0), q.recover(Duration.ofSeconds(30)));
            assertEquals(0, redis.llen("zeromesh:inflight:rec:crashed"));
            assertNull(redis.zscore("zeromesh:consumers:rec", "crashed"));
            try (RedisQueue.Consumer c = q.consumer("rescuer")) {
                // back at the head, oldest first, before the job that waited
                RedisJob first = c.take(Duration.ofSeconds(1)).orElseThrow();
                assertEquals(a, first.id());
                assertEquals(2, first.attempt(), "the dead consumer's delivery counts as an attempt");
                assertEquals("consumer crashed lost: no heartbeat", first.error());
                assertEquals(b, c.take(Duration.ofSeconds(1)).orElseThrow().id());
                RedisJob waited = c.take(Duration.ofSeconds(1)).orElseThrow();
                assertEquals(later, waited.id());
                assertEquals(1, waited.attempt(), "a job no dead consumer held keeps its count");
            }
        });
    }

    @Test
    void aJobWhoseConsumerDiesFiveTimesIsDeadLetteredWithAttemptFive() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "poison");
            String id = q.push("crashes every consumer".getBytes(UTF_8), Map.of("k", "v"));
            for (int death = 1; death <= 5; death++) {
                String name = "victim-" + death;
                RedisQueue.Consumer victim = q.consumer(name);
                RedisJob job = victim.take(Duration.ofSeconds(1)).orElseThrow(
                        () -> new AssertionError("the job came back for another consumer: " + redis.lrange(
                                "zeromesh:dead:poison", 0, -1)));
                assertEquals(id, job.id());
                assertEquals(death, job.attempt());
                victim.close(); // it dies holding the job: no more heartbeats
                redis.zadd("zeromesh:consumers:poison", System.currentTimeMillis() / 1000.0 - 60, name);
                RedisQueue.Recovered recovered = q.recover(Duration.ofSeconds(30));
                assertEquals(death < 5 ? new RedisQueue.Recovered(1, 0) : new RedisQueue.Recovered(0, 1), recovered,
                        "recovery after death " + death);
            }
            assertEquals(0, redis.llen("zeromesh:queue:poison"), "not looping back to the queue");
            List<String> dead = redis.lrange("zeromesh:dead:poison", 0, -1);
            assertEquals(1, dead.size());
            JsonObject env = json(dead.get(0));
            assertEquals(id, env.get("id").getAsString());
            assertEquals(5, env.get("attempt").getAsInt());
            assertEquals("consumer victim-5 lost: no heartbeat", env.get("error").getAsString());
            assertEquals("poison", env.get("queue").getAsString());
            assertTrue(env.get("dead_ms").getAsLong() > 0, "recover_dead.lua stamps dead_ms with Redis's clock");
            assertEquals("crashes every consumer", env.get("body").getAsString());
            assertEquals("v", env.getAsJsonObject("headers").get("k").getAsString());
        });
    }

    @Test
    void rawElementsOfDeadConsumersGoBackUnchanged() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "rawrec", true, 2);
            q.push("cat.png".getBytes(UTF_8));
            for (int death = 1; death <= 3; death++) {
                RedisQueue.Consumer victim = q.consumer("raw-victim");
                assertEquals("cat.png", victim.take(Duration.ofSeconds(1)).orElseThrow().text());
                victim.close();
                redis.zadd("zeromesh:consumers:rawrec", System.currentTimeMillis() / 1000.0 - 60, "raw-victim");
                assertEquals(new RedisQueue.Recovered(1, 0), q.recover(Duration.ofSeconds(30)));
                assertEquals(List.of("cat.png"), redis.lrange("zeromesh:queue:rawrec", 0, -1));
            }
        });
    }

    @Test
    void aConsumerThatBeatsBetweenTheReadAndTheScriptKeepsItsJobs() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "race");
            q.push("held".getBytes(UTF_8));
            redis.lmove("zeromesh:queue:race", "zeromesh:inflight:race:slow", ListDirection.LEFT, ListDirection.RIGHT);
            double cutoff = System.currentTimeMillis() / 1000.0 - 30;
            redis.zadd("zeromesh:consumers:race", cutoff - 30, "slow");
            assertEquals(List.of("slow"), redis.zrangeByScore("zeromesh:consumers:race", "-inf", Double.toString(cutoff)),
                    "read as silent");
            redis.zadd("zeromesh:consumers:race", System.currentTimeMillis() / 1000.0, "slow"); // and then it beats
            DeadConsumerRecovery recovery = new DeadConsumerRecovery(redis, q, false, 5);
            assertEquals(new RedisQueue.Recovered(0, 0), recovery.recoverConsumer("slow", Double.toString(cutoff)));
            assertEquals(1, redis.llen("zeromesh:inflight:race:slow"));
            assertEquals(0, redis.llen("zeromesh:queue:race"));
            assertTrue(redis.zscore("zeromesh:consumers:race", "slow") != null, "a live consumer stays in the set");
            redis.zadd("zeromesh:consumers:race", cutoff - 30, "slow"); // silent after all: recovered, once
            assertEquals(new RedisQueue.Recovered(1, 0), recovery.recoverConsumer("slow", Double.toString(cutoff)));
            assertEquals(new RedisQueue.Recovered(0, 0), recovery.recoverConsumer("slow", Double.toString(cutoff)),
                    "a second recoverer finds nothing");
        });
    }

    @Test
    void recoverScriptIsProtocolRedisRecoverDead() throws Exception {
        String file = java.nio.file.Files.readString(TestSupport.repo().resolve("protocol/redis/recover_dead.lua"));
        assertEquals(file, DeadConsumerRecovery.SCRIPT);
    }

    @Test
    void theJarCarriesEveryScriptOfProtocolRedisVerbatim() throws Exception {
        java.nio.file.Path dir = TestSupport.repo().resolve("protocol/redis");
        List<java.nio.file.Path> files;
        try (java.util.stream.Stream<java.nio.file.Path> listing = java.nio.file.Files.list(dir)) {
            files = listing.filter(p -> p.toString().endsWith(".lua")).sorted().toList();
        }
        assertFalse(files.isEmpty(), "protocol/redis holds the Lua scripts");
        for (java.nio.file.Path file : files) {
            String name = file.getFileName().toString();
            assertEquals(java.nio.file.Files.readString(file), RedisQueue.script(name), name);
        }
    }

    @Test
    void rawQueuesKeepTheBytesAndCountFailuresInMemory() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "thumbs", true, 3);
            q.push("cat.png".getBytes(UTF_8));
            assertEquals("cat.png", redis.lindex("zeromesh:queue:thumbs", 0), "a raw element is the body itself");
            try (RedisQueue.Consumer c = q.consumer("host-6")) {
                for (int i = 0; i < 3; i++) {
                    RedisJob job = c.take(Duration.ofSeconds(1)).orElseThrow();
                    assertTrue(job.raw());
                    assertEquals("cat.png", job.text());
                    c.fail(job, "no such file");
                    if (i < 2) {
                        assertEquals("cat.png", redis.lindex("zeromesh:queue:thumbs", 0), "requeued unchanged");
                    }
                }
                Optional<RedisJob> none = c.take(Duration.ofMillis(50));
                assertTrue(none.isEmpty());
            }
            JsonObject dead = json(redis.lindex("zeromesh:dead:thumbs", 0));
            assertEquals("cat.png", dead.get("body").getAsString());
            assertEquals(3, dead.get("attempt").getAsInt());
            assertEquals("no such file", dead.get("error").getAsString());
        });
    }

    @Test
    void heartbeatsKeepALongRunningConsumerAlive() {
        assertTimeoutPreemptively(s(10), () -> {
            RedisQueue q = new RedisQueue(redis, "hb");
            try (RedisQueue.Consumer c = q.consumer("busy")) {
                double first = redis.zscore("zeromesh:consumers:hb", "busy");
                Thread.sleep(1100);
                c.heartbeat();
                assertTrue(redis.zscore("zeromesh:consumers:hb", "busy") > first);
            }
        });
    }
}
