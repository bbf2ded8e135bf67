// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.JedisPooled;
import redis.clients.jedis.Protocol;
import redis.clients.jedis.UnifiedJedis;
import redis.clients.jedis.exceptions.JedisDataException;
import redis.clients.jedis.util.SafeEncoder;

/**
 * RedisQueue as the least-privilege user zeromesh-consumer of docs/redis-acl.conf (the file the
 * operator's guide shows): push, take, ack, fail, recover and WAIT all go through and Redis's ACL
 * LOG stays empty; a user short of a command gets Redis's NOPERM, never a success.
 */
class RedisAclTest {
    static final Path ACL_FILE = TestSupport.repo().resolve("docs/redis-acl.conf");
    static final Pattern PLACEHOLDER = Pattern.compile(">([A-Z]+)-PASSWORD\\b");
    static final String ADMIN_PASSWORD = secret();
    static final Map<String, String> PASSWORDS = new HashMap<>();
    static final int PORT = TestSupport.freePort();
    static Process server;
    static JedisPooled admin;

    static String secret() {
        byte[] b = new byte[12];
        new SecureRandom().nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    @BeforeAll
    static void startRedis() throws Exception {
        Path logDir = TestSupport.logDir();
        String binary = System.getenv().getOrDefault("ZEROMESH_REDIS_SERVER", "redis-server");
        ProcessBuilder pb = new ProcessBuilder(List.of(binary, "--port", Integer.toString(PORT), "--bind", "127.0.0.1",
                "--requirepass", ADMIN_PASSWORD, "--save", "", "--appendonly", "no", "--dir", logDir.toString()));
        pb.redirectErrorStream(true);
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(logDir.resolve("redis-acl-" + PORT + ".log").toFile()));
        server = pb.start();
        admin = new JedisPooled("127.0.0.1", PORT, null, ADMIN_PASSWORD);
        long deadline = System.nanoTime() + TestSupport.seconds(10).toNanos();
        while (true) {
            try {
                if ("PONG".equals(admin.ping())) {
                    break;
                }
            } catch (RuntimeException e) {
                if (!server.isAlive() || System.nanoTime() > deadline) {
                    throw new IllegalStateException("redis-server did not answer PING within 10 s", e);
                }
            }
            Thread.sleep(20);
        }
        for (String line : Files.readAllLines(ACL_FILE)) {
            if (!line.isBlank()) {
                add(line);
            }
        }
    }

    @AfterAll
    static void stopRedis() throws Exception {
        if (admin != null) {
            admin.close();
        }
        if (server != null) {
            server.destroy();
            if (!server.waitFor(TestSupport.seconds(5).toMillis(), TimeUnit.MILLISECONDS)) {
                server.destroyForcibly();
            }
        }
    }

    /** One ACL SETUSER line (no quoting in the file), its >ROLE-PASSWORD placeholder replaced. */
    static void add(String line) {
        Matcher m = PLACEHOLDER.matcher(line);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String role = m.group(1).toLowerCase();
            m.appendReplacement(out, ">" + PASSWORDS.computeIfAbsent(role, r -> secret()));
        }
        m.appendTail(out);
        String[] words = out.toString().trim().split("\\s+");
        assertEquals("ACL", words[0]);
        admin.sendCommand(Protocol.Command.ACL, java.util.Arrays.copyOfRange(words, 1, words.length));
    }

    static String url(String role, String user) {
        return "redis://" + user + ":" + PASSWORDS.get(role) + "@127.0.0.1:" + PORT;
    }

    /** ACL LOG entries as "user command" strings, but CLIENT SETINFO's (libraries ignore its refusal). */
    static List<String> denials() {
        List<String> out = new ArrayList<>();
        for (Object entry : (List<?>) admin.sendCommand(Protocol.Command.ACL, "LOG")) {
            Map<String, String> fields = new HashMap<>();
            List<?> kv = (List<?>) entry;
            for (int i = 0; i + 1 < kv.size(); i += 2) {
                Object v = kv.get(i + 1);
                fields.put(SafeEncoder.encode((byte[]) kv.get(i)), v instanceof byte[] b ? SafeEncoder.encode(b) : "");
            }
            if (!"client|setinfo".equals(fields.get("object"))) {
                out.add(fields.get("username") + " " + fields.get("object"));
            }
        }
        return out;
    }

    @BeforeEach
    void clean() {
        admin.flushAll();
        admin.sendCommand(Protocol.Command.ACL, "LOG", "RESET");
    }

    @Test
    void theConsumerUserPushesTakesAcksFailsAndRecovers() {
        assertTimeoutPreemptively(TestSupport.seconds(20), () -> {
            try (RedisQueue q = RedisQueue.fromUrl(url("consumer", "zeromesh-consumer"), "mail", false, 2)) {
                q.push("hello".getBytes(UTF_8));
                q.push("bounce".getBytes(UTF_8));
                try (RedisQueue.Consumer c = q.consumer("j1")) {
                    RedisJob hello = c.take(Duration.ofSeconds(2)).orElseThrow();
                    assertEquals("hello", hello.text());
                    c.ack(hello);
                    for (int attempt = 1; attempt <= 2; attempt++) {
                        RedisJob bounce = c.take(Duration.ofSeconds(2)).orElseThrow();
                        assertEquals(attempt, bounce.attempt());
                        c.fail(bounce, "mailbox full");
                    }
                    assertTrue(c.take(Duration.ofMillis(50)).isEmpty());
                }
                assertEquals(1, admin.llen("zeromesh:dead:mail"), "dead-lettered after two attempts");
                assertEquals(0, admin.llen("zeromesh:inflight:mail:j1"));
                assertNull(admin.zscore("zeromesh:consumers:mail", "j1"), "left the consumers set at close");

                admin.rpush("zeromesh:inflight:mail:gone", "{\"id\":\"j-9\",\"body\":\"orphan\"}");
                admin.zadd("zeromesh:consumers:mail", System.currentTimeMillis() / 1000.0 - 600, "gone");
                assertEquals(new RedisQueue.Recovered(1, 0), q.recover(Duration.ofSeconds(60)));
                assertEquals(1, admin.llen("zeromesh:queue:mail"));
            }
            assertEquals(List.of(), denials());
        });
    }

    @Test
    void waitIsAllowedWhenReplicasMustHaveTheJob() {
        try (UnifiedJedis client = RedisUrls.connect(url("consumer", "zeromesh-consumer"))) {
            RedisQueue q = new RedisQueue(client, "mail", false, 2, 1);
            ZeromeshException e = assertThrows(ZeromeshException.class, () -> q.push("x".getBytes(UTF_8)));
            assertTrue(e.getMessage().contains("stored on 0 of 1 replicas"), e.getMessage()); // WAIT answered
        }
        assertEquals(List.of(), denials());
    }

    @Test
    void aUserShortOfACommandGetsNopermNotASuccess() throws IOException {
        String line = Files.readAllLines(ACL_FILE).stream().filter(l -> l.contains(" zeromesh-consumer ")).findFirst()
                .orElseThrow();
        add(line.replace(" zeromesh-consumer ", " zeromesh-consumer-short ") + " -rpush");
        try (RedisQueue q = RedisQueue.fromUrl(url("consumer", "zeromesh-consumer-short"), "mail")) {
            JedisDataException e = assertThrows(JedisDataException.class, () -> q.push("lost?".getBytes(UTF_8)));
            assertTrue(e.getMessage().contains("NOPERM") && e.getMessage().contains("'rpush'"), e.getMessage());
        }
        assertEquals(0, admin.llen("zeromesh:queue:mail"));
    }
}
