// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Closing a client delivers what it already sent, bounded by its linger: a separate JVM publishes and exits. */
class CloseDeliversTest {
    static BrokerProcess broker;

    @BeforeAll
    static void startBroker() throws Exception {
        broker = new BrokerProcess(TestSupport.logDir()).start();
    }

    @AfterAll
    static void stopBroker() {
        if (broker != null) {
            broker.close();
        }
    }

    private static Duration s(double seconds) {
        return TestSupport.seconds(seconds);
    }

    /** Run PublishAndExit in a fresh JVM with the test classpath; returns its exit status. */
    private static int publishAndExit(String topic, int n) throws Exception {
        String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Path log = TestSupport.logDir().resolve("publish-and-exit.log");
        List<String> command = new ArrayList<>(List.of(java, "-cp", classpath, PublishAndExit.class.getName(),
                broker.endpoint, topic, Integer.toString(n)));
        Process p = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        if (!p.waitFor(s(30).toMillis(), TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the publishing JVM did not exit within 30 s");
        }
        return p.exitValue();
    }

    @Test
    void aProcessThatPublishesAndExitsAtOnceDeliversEveryEvent() {
        assertTimeoutPreemptively(s(60), () -> {
            try (Client client = Client.builder().endpoint(broker.endpoint).pubEndpoint(broker.pubEndpoint).build();
                    Subscription sub = client.subscribe("java.close.")) {
                // Subscribed once a probe comes back (the SUB's subscription reaches the broker late).
                Event probe = null;
                long deadline = System.nanoTime() + s(10).toNanos();
                while (probe == null && System.nanoTime() < deadline) {
                    client.publish("java.close.probe", new byte[0]);
                    probe = sub.next(Duration.ofMillis(100));
                }
                assertNotNull(probe, "the subscription is live");

                assertEquals(0, publishAndExit("java.close.burst", 100), "the publisher exited cleanly");

                Set<Integer> got = new TreeSet<>();
                Event e;
                while (got.size() < 100 && (e = sub.next(s(5))) != null) {
                    if (e.topic().equals("java.close.burst")) {
                        got.add(Integer.parseInt(new String(e.body(), UTF_8)));
                    }
                }
                assertEquals(100, got.size(), "events received of 100 published before exit: " + got);
            }
        });
    }
}
