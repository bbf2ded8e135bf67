// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Traces end to end, through a real Python broker: a job pushed by a handler joins the handled
 * job's trace, and one pushed while handling a request joins the request's.
 */
class TraceLiveTest {
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

    @Test
    void aJobPushedByAHandlerKeepsTheTrace() {
        assertTimeoutPreemptively(TestSupport.seconds(30), () -> {
            BlockingQueue<Job> children = new LinkedBlockingQueue<>();
            try (Client client = Client.builder().endpoint(broker.endpoint).pubEndpoint(broker.pubEndpoint).build()) {
                Handler parent = job -> {
                    client.push("tr-child", ("child of " + job.id()).getBytes(UTF_8));
                    return new byte[0];
                };
                Worker worker = Worker.builder().endpoint(broker.endpoint).concurrency(2).build();
                worker.handle("tr-parent", parent).handle("tr-front", parent).handle("tr-child", job -> {
                    children.add(job);
                    return null;
                });
                try {
                    worker.start();
                    assertTrue(worker.awaitReady(TestSupport.seconds(5)), "the broker answered READY");

                    String parentId = client.push("tr-parent", "parent".getBytes(UTF_8),
                            PushOptions.builder().trace("trace-java-1").build());
                    Job child = children.poll(TestSupport.seconds(10).toMillis(), TimeUnit.MILLISECONDS);
                    assertNotNull(child, "the child job was delivered");
                    assertEquals("child of " + parentId, child.text());
                    assertEquals("trace-java-1", child.trace());
                    assertNotEquals(parentId, child.id());

                    // A request without a trace is its own trace: the child joins it.
                    client.request("tr-front", new byte[0], Duration.ofSeconds(5));
                    child = children.poll(TestSupport.seconds(10).toMillis(), TimeUnit.MILLISECONDS);
                    assertNotNull(child, "the request's child job was delivered");
                    assertEquals(child.text().substring("child of ".length()), child.trace());
                } finally {
                    worker.close(Duration.ofSeconds(2));
                }
            }
        });
    }
}
