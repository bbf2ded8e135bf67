// SPDX-License-Identifier: MIT
package io.zeromesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import redis.clients.jedis.HostAndPort;

/** RedisUrls: the redis+sentinel:// grammar of DESIGN16 and its errors (no connection is made). */
class RedisUrlsTest {

    private static void refused(String url, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RedisUrls.parseSentinel(url));
        assertTrue(e.getMessage().contains(expected), "\"" + e.getMessage() + "\" should say \"" + expected + "\"");
        assertFalse(e.getMessage().contains("s3cret"), "passwords are starred out: " + e.getMessage());
    }

    @Test
    void everyPartIsRead() {
        RedisUrls.Sentinel s = RedisUrls.parseSentinel("redis+sentinel://:s3cret@10.0.0.1:26379, 10.0.0.2:26380"
                + ",[::1]:26381/mymaster/2?sentinel_password=sp&ssl=true&socket_timeout=1.5&min_replicas=2");
        assertEquals(List.of(new HostAndPort("10.0.0.1", 26379), new HostAndPort("10.0.0.2", 26380),
                new HostAndPort("::1", 26381)), s.sentinels());
        assertEquals("mymaster", s.service());
        assertEquals(2, s.db());
        assertNull(s.user());
        assertEquals("s3cret", s.password());
        assertEquals("sp", s.sentinelPassword());
        assertTrue(s.ssl());
        assertEquals(Duration.ofMillis(1500), s.socketTimeout());
        assertEquals(2, s.minReplicas());
    }

    @Test
    void theShortestFormHasDefaults() {
        RedisUrls.Sentinel s = RedisUrls.parseSentinel("redis+sentinel://127.0.0.1:26379/main");
        assertEquals(List.of(new HostAndPort("127.0.0.1", 26379)), s.sentinels());
        assertEquals(0, s.db());
        assertNull(s.password());
        assertNull(s.sentinelPassword());
        assertFalse(s.ssl());
        assertNull(s.socketTimeout());
        assertNull(s.minReplicas());
        assertNull(RedisUrls.minReplicas("redis+sentinel://127.0.0.1:26379/main"));
        assertNull(RedisUrls.minReplicas("redis://127.0.0.1:6379/0"), "plain URLs have no min_replicas");
    }

    @Test
    void aPasswordKeepsItsPlusAndPercentEscapes() {
        RedisUrls.Sentinel s = RedisUrls.parseSentinel("redis+sentinel://ann:a+b%40c@h:1/svc");
        assertEquals("ann", s.user());
        assertEquals("a+b@c", s.password());
    }

    @Test
    void malformedUrlsSayWhatIsWrong() {
        refused("redis+sentinel://:s3cret@h1:26379,,h2:26379/svc", "empty sentinel address");
        refused("redis+sentinel://:s3cret@/svc", "empty sentinel address");
        refused("redis+sentinel://:s3cret@h1/svc", "sentinel address \"h1\" is not HOST:PORT");
        refused("redis+sentinel://:s3cret@h1:port/svc", "sentinel port \"port\" is not a port number");
        refused("redis+sentinel://:s3cret@h1:70000/svc", "is not a port number");
        refused("redis+sentinel://:s3cret@h1:26379", "no Sentinel service name");
        refused("redis+sentinel://:s3cret@h1:26379/", "no Sentinel service name");
        refused("redis+sentinel://:s3cret@h1:26379/svc/x", "the database must be a number, got \"x\"");
        refused("redis+sentinel://:s3cret@h1:26379/svc/0/more", "only a database number may follow");
        refused("redis+sentinel://:s3cret@h1:26379/svc?colour=red", "unknown option \"colour\"");
        refused("redis+sentinel://:s3cret@h1:26379/svc?ssl=maybe", "ssl must be true or false");
        refused("redis+sentinel://:s3cret@h1:26379/svc?socket_timeout=-1", "socket_timeout must be a positive number");
        refused("redis+sentinel://:s3cret@h1:26379/svc?socket_timeout=soon", "socket_timeout must be a positive number");
        refused("redis+sentinel://:s3cret@h1:26379/svc?min_replicas=one", "min_replicas must be a whole number");
        refused("redis+sentinel://:s3cret@h1:26379/svc?sentinel_password=", "option sentinel_password is empty");
        refused("redis+sentinel://:s3cret@h1:26379/svc?ssl", "malformed options");
        refused("127.0.0.1:26379/svc", "a Redis URL looks like");
        refused("unix:///tmp/redis.sock", "Jedis has no unix-socket transport");
        refused("http://:s3cret@h1:26379/svc", "unknown Redis URL scheme \"http\"");
    }

    @Test
    void plainUrlsAreCheckedBeforeJedisSeesThem() {
        IllegalArgumentException noPort = assertThrows(IllegalArgumentException.class,
                () -> RedisUrls.connect("redis://:s3cret@localhost/0"));
        assertTrue(noPort.getMessage().contains("needs HOST:PORT"), noPort.getMessage());
        assertFalse(noPort.getMessage().contains("s3cret"));
        IllegalArgumentException db = assertThrows(IllegalArgumentException.class,
                () -> RedisUrls.connect("redis://localhost:6379/zero"));
        assertTrue(db.getMessage().contains("the database must be a number"), db.getMessage());
        assertThrows(IllegalArgumentException.class, () -> RedisQueue.fromUrl("redis+sentinel://h:1", "mail"),
                "fromUrl checks the URL before connecting");
    }

    @Test
    void redactionStarsOutEveryPassword() {
        assertEquals("redis+sentinel://:***@h:1/svc?sentinel_password=***&ssl=true",
                RedisUrls.redact("redis+sentinel://:pw@h:1/svc?sentinel_password=sp&ssl=true"));
        assertEquals("redis://ann:***@h:1/0", RedisUrls.redact("redis://ann:pw@h:1/0"));
        assertEquals("redis://h:1/0", RedisUrls.redact("redis://h:1/0"));
    }

    @Test
    void sentinelIsTheSchemeNotTheHost() {
        assertTrue(RedisUrls.isSentinel("REDIS+SENTINEL://h:1/svc"));
        assertFalse(RedisUrls.isSentinel("redis://sentinel:6379"));
        assertFalse(RedisUrls.isSentinel("rediss://h:6380"));
    }
}
