// SPDX-License-Identifier: MIT
package io.zeromesh;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The credit split of a worker over several brokers (SPEC, workers), without sockets. */
class CreditSplitTest {
    @Test
    void sharesFollowTheRuleInRotatedListOrder() {
        boolean[] all = {true, true, true};
        assertArrayEquals(new int[] {4, 3, 3}, CreditSplit.shares(10, all, 0));
        assertArrayEquals(new int[] {3, 4, 3}, CreditSplit.shares(10, all, 1));
        assertArrayEquals(new int[] {3, 3, 4}, CreditSplit.shares(10, all, 2));
        // Fewer credits than brokers: n - C brokers get 0, starting after the offset.
        assertArrayEquals(new int[] {0, 1, 1}, CreditSplit.shares(2, all, 1));
        // Only registered brokers count.
        assertArrayEquals(new int[] {5, 0, 5}, CreditSplit.shares(10, new boolean[] {true, false, true}, 0));
        assertArrayEquals(new int[] {0, 0, 0}, CreditSplit.shares(10, new boolean[] {false, false, false}, 0));
        assertArrayEquals(new int[] {8}, CreditSplit.shares(8, new boolean[] {true}, 0));
    }

    @Test
    void aShareIsLoweredAtOnceButNeverBelowWhatItHoldsAndItsBoundWaitsForTheAnswer() {
        // A second broker registers while the first holds 6 of 8.
        int[] told = {8, 0};
        int[] bound = {8, 0};
        int[] verdict = CreditSplit.rebalance(8, told, bound, new int[] {6, 0}, new boolean[] {true, true}, 0);
        assertArrayEquals(new int[] {CreditSplit.LOWERED, CreditSplit.UNCHANGED}, verdict);
        assertArrayEquals(new int[] {6, 0}, told);
        assertArrayEquals(new int[] {8, 0}, bound, "the first may still send under 8 until it answers the READY");
        // The answer: the first's bound is 6 now, 2 are free for the second.
        bound[0] = 6;
        verdict = CreditSplit.rebalance(8, told, bound, new int[] {6, 0}, new boolean[] {true, true}, 0);
        assertArrayEquals(new int[] {CreditSplit.UNCHANGED, CreditSplit.RAISED}, verdict);
        assertArrayEquals(new int[] {6, 2}, told);
        // Its jobs finish: lowered to its share, and the second gets the rest once that is answered.
        CreditSplit.rebalance(8, told, bound, new int[] {3, 2}, new boolean[] {true, true}, 0);
        assertArrayEquals(new int[] {4, 2}, told);
        bound[0] = 4;
        CreditSplit.rebalance(8, told, bound, new int[] {3, 2}, new boolean[] {true, true}, 0);
        assertArrayEquals(new int[] {4, 4}, told);
    }

    @Test
    void aJoiningBrokersReadyOffersOnlyWhatIsFree() {
        int[] told = {2, 2, 0};
        int[] bound = {2, 2, 0};
        boolean[] registered = {true, true, false};
        assertEquals(0, CreditSplit.offer(4, 2, told, bound, new int[] {2, 2, 0}, registered, 0));
        told = new int[] {2, 1, 0};
        bound = new int[] {2, 1, 0};
        assertEquals(1, CreditSplit.offer(4, 2, told, bound, new int[] {2, 1, 0}, registered, 0));
        assertArrayEquals(new int[] {2, 1, 1}, bound);
    }

    /**
     * Brokers and a worker exchanging messages in random order, as the sockets may deliver them: a
     * broker sends jobs up to the credit it last read, a READY is answered after the jobs sent
     * before it, an ACK frees the broker's slot when it arrives. Brokers register and are lost at
     * random. Whatever the order, the worker never holds more than its credit.
     */
    @Test
    void theWorkerNeverHoldsMoreThanItsCreditWhateverTheOrderOfMessages() {
        Random random = new Random(17);
        for (int round = 0; round < 2000; round++) {
            new Simulation(1 + random.nextInt(4), random.nextInt(9), random).run(300);
        }
    }

    private static final class Simulation {
        final int n;
        final int credit;
        final Random random;
        final int offset;
        final int[] told;
        final int[] bound;
        final int[] held;
        final boolean[] registered;
        final int[] lowering;
        final int[] applied;
        final int[] brokerHeld;
        /** Worker to broker: {kind, value}; kind 0 CREDIT, 1 READY, 2 ACK. Broker to worker: 0 JOB, 1 the READY's answer. */
        final List<ArrayDeque<int[]>> up = new ArrayList<>();
        final List<ArrayDeque<int[]>> down = new ArrayList<>();

        Simulation(int n, int credit, Random random) {
            this.n = n;
            this.credit = credit;
            this.random = random;
            this.offset = random.nextInt(n);
            told = new int[n];
            bound = new int[n];
            held = new int[n];
            registered = new boolean[n];
            lowering = new int[n];
            applied = new int[n];
            brokerHeld = new int[n];
            Arrays.fill(lowering, -1);
            for (int b = 0; b < n; b++) {
                up.add(new ArrayDeque<>());
                down.add(new ArrayDeque<>());
                ready(b, CreditSplit.offer(credit, b, told, bound, held, registered, offset));
            }
        }

        void ready(int b, int value) {
            up.get(b).add(new int[] {1, value});
        }

        void rebalance() {
            int[] verdict = CreditSplit.rebalance(credit, told, bound, held, registered, offset);
            for (int b = 0; b < n; b++) {
                if (verdict[b] == CreditSplit.LOWERED) {
                    lowering[b] = told[b];
                    ready(b, told[b]);
                } else if (verdict[b] == CreditSplit.RAISED) {
                    up.get(b).add(new int[] {0, told[b]});
                }
            }
        }

        void run(int steps) {
            for (int step = 0; step < steps; step++) {
                int b = random.nextInt(n);
                switch (random.nextInt(5)) {
                    case 0 -> { // the broker reads the worker's next message
                        int[] m = up.get(b).poll();
                        if (m != null && m[0] == 2) {
                            brokerHeld[b] -= m[1];
                        } else if (m != null) {
                            applied[b] = m[1];
                            if (m[0] == 1) {
                                down.get(b).add(new int[] {1, m[1]});
                            }
                        }
                    }
                    case 1 -> { // the broker sends a job if its credit allows
                        if (brokerHeld[b] < applied[b]) {
                            brokerHeld[b]++;
                            down.get(b).add(new int[] {0, 0});
                        }
                    }
                    case 2 -> { // the worker reads the broker's next message
                        int[] m = down.get(b).poll();
                        if (m != null && m[0] == 0) {
                            held[b]++;
                            assertTrue(Arrays.stream(held).sum() <= credit, "held " + Arrays.toString(held)
                                    + " with credit " + credit);
                        } else if (m != null) {
                            if (!registered[b]) {
                                registered[b] = true;
                                rebalance();
                            } else if (lowering[b] == m[1]) {
                                lowering[b] = -1;
                                if (told[b] == m[1]) {
                                    bound[b] = m[1];
                                    rebalance();
                                }
                            }
                        }
                    }
                    case 3 -> { // a job finishes: the split first, then the ACK
                        if (held[b] > 0) {
                            held[b]--;
                            rebalance();
                            up.get(b).add(new int[] {2, 1});
                        }
                    }
                    default -> { // now and then the connection is lost and made again
                        if (random.nextInt(20) == 0) {
                            lose(b);
                        }
                    }
                }
            }
        }

        void lose(int b) {
            up.get(b).clear();
            down.get(b).clear();
            held[b] = 0;
            brokerHeld[b] = 0;
            applied[b] = 0;
            registered[b] = false;
            lowering[b] = -1;
            told[b] = 0;
            bound[b] = 0;
            rebalance();
            ready(b, CreditSplit.offer(credit, b, told, bound, held, registered, offset));
        }
    }
}
