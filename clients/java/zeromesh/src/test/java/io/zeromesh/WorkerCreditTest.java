// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * A worker of several brokers never holds more than its credit while brokers come and go (SPEC
 * 2.4): real brokers on loopback ports, saturated with slow jobs, a third one started mid-stream.
 * The worker runs more handler threads than its credit, so only the credit limits what runs.
 */
class WorkerCreditTest {
    private static final int CREDIT = 4;
    private static final long JOB_MS = 300;
    private static final String LABEL = "java-credit";

    private static Duration s(double seconds) {
        return TestSupport.seconds(seconds);
    }

    private static List<Map<?, ?>> workers(BrokerProcess b) {
        try (Client c = Client.builder().endpoint(b.endpoint).build()) {
            List<Map<?, ?>> mine = new ArrayList<>();
            for (Object w : (List<?>) c.admin("status", Map.of(), Duration.ofSeconds(5)).get("workers")) {
                if (LABEL.equals(((Map<?, ?>) w).get("label"))) {
                    mine.add((Map<?, ?>) w);
                }
            }
            return mine;
        }
    }

    private static int sum(BrokerProcess b, String field) {
        return workers(b).stream().mapToInt(w -> ((Number) w.get(field)).intValue()).sum();
    }

    private static void waitUntil(BooleanSupplier done, Duration within, String what) throws InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() - deadline >= 0) {
                throw new AssertionError("not within " + within.toMillis() + " ms: " + what);
            }
            Thread.sleep(50);
        }
    }

    /**
     * Samples the brokers' held figures until stopped. Two brokers are never read at the same
     * instant, and a job may move from one read early to one read late, so each round reads every
     * broker twice and counts each broker's lower figure: a job that finished between the two reads
     * is not counted twice, one held throughout is counted.
     */
    private static final class Sampler extends Thread {
        volatile List<BrokerProcess> brokers = List.of();
        volatile boolean stop;
        final AtomicInteger most = new AtomicInteger();
        final AtomicInteger rounds = new AtomicInteger();

        @Override
        public void run() {
            while (!stop) {
                List<BrokerProcess> now = brokers;
                int[] first = now.stream().mapToInt(b -> sum(b, "held")).toArray();
                int total = 0;
                for (int i = 0; i < now.size(); i++) {
                    total += Math.min(first[i], sum(now.get(i), "held"));
                }
                most.accumulateAndGet(total, Math::max);
                rounds.incrementAndGet();
                try {
                    Thread.sleep(50);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }
    }

    @Test
    void aJoiningBrokerGetsOnlyWhatIsFreeAndTheTotalNeverExceedsTheCredit() {
        assertTimeoutPreemptively(s(120), () -> {
            List<BrokerProcess> bs = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                bs.add(new BrokerProcess(TestSupport.logDir()).withArgs("--name", "b" + i));
            }
            List<AutoCloseable> open = new ArrayList<>();
            Sampler sampler = new Sampler();
            AtomicInteger running = new AtomicInteger();
            AtomicInteger most = new AtomicInteger();
            AtomicInteger handledB2 = new AtomicInteger();
            AtomicInteger handled = new AtomicInteger();
            AtomicLong firstB2 = new AtomicLong();
            try {
                bs.get(0).start();
                bs.get(1).start();
                String list = String.join(",", bs.stream().map(b -> b.endpoint).toList());
                // More handler threads than credit: only the credit keeps the handlers running at once within 4.
                Worker w = Worker.builder().endpoint(list).concurrency(2 * CREDIT).credit(CREDIT).label(LABEL).build();
                open.add(w);
                w.handle("slow", job -> {
                    most.accumulateAndGet(running.incrementAndGet(), Math::max);
                    Thread.sleep(JOB_MS);
                    running.decrementAndGet();
                    handled.incrementAndGet();
                    if (job.text().startsWith("b2-")) {
                        handledB2.incrementAndGet();
                        firstB2.compareAndSet(0, System.nanoTime());
                    }
                    return null;
                }).start();
                waitUntil(() -> sum(bs.get(0), "credit") + sum(bs.get(1), "credit") == CREDIT
                        && sum(bs.get(0), "credit") == 2, s(15), "the credit split 2/2 over the first two brokers");
                sampler.brokers = bs.subList(0, 2);
                sampler.setDaemon(true);
                sampler.start();
                for (int i = 0; i < 2; i++) {
                    Client c = Client.builder().endpoint(bs.get(i).endpoint).build();
                    open.add(c);
                    List<byte[]> bodies = new ArrayList<>();
                    for (int n = 0; n < 40; n++) {
                        bodies.add(("b" + i + "-" + n).getBytes(UTF_8));
                    }
                    c.pushMany("slow", bodies);
                }
                waitUntil(() -> handled.get() >= 2 * CREDIT, s(10), "the first two brokers' jobs being handled");
                bs.get(2).start();
                Client c = Client.builder().endpoint(bs.get(2).endpoint).build();
                open.add(c);
                List<byte[]> joined = new ArrayList<>();
                for (int n = 0; n < 10; n++) {
                    joined.add(("b2-" + n).getBytes(UTF_8));
                }
                c.pushMany("slow", joined);
                long pushedAt = System.nanoTime();
                sampler.brokers = bs;
                waitUntil(() -> firstB2.get() != 0, s(5), "a job of the joining broker handled");
                double servedAfter = (firstB2.get() - pushedAt) / 1e9;
                waitUntil(() -> handledB2.get() >= 10, s(30), "the joining broker's jobs");
                sampler.stop = true;
                sampler.join(s(10).toMillis());
                System.out.printf("credit %d: handled %d; most running at once %d; most held by the brokers %d over %d"
                        + " samples; the joining broker's first job done %.2fs after its push%n", CREDIT, handled.get(),
                        most.get(), sampler.most.get(), sampler.rounds.get(), servedAfter);
                assertTrue(sampler.rounds.get() >= 10, "sampled " + sampler.rounds.get() + " times");
                assertTrue(most.get() <= CREDIT, most.get() + " handlers ran at once with credit " + CREDIT);
                assertTrue(sampler.most.get() <= CREDIT, "the brokers held " + sampler.most.get()
                        + " jobs for a worker of credit " + CREDIT);
                assertEquals(10, handledB2.get());
            } finally {
                sampler.stop = true;
                for (int i = open.size() - 1; i >= 0; i--) {
                    if (open.get(i) instanceof Worker w) {
                        w.close(Duration.ofSeconds(2));
                    } else {
                        open.get(i).close();
                    }
                }
                bs.forEach(BrokerProcess::close);
            }
        });
    }
}
