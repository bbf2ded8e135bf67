// SPDX-License-Identifier: MIT
package io.zeromesh;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
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
    void aShareIsLoweredAtOnceButNeverBelowWhatItHolds() {
        // A second broker registers while the first holds 6 of 8.
        int[] next = CreditSplit.next(8, new int[] {8, 0}, new int[] {6, 0}, new int[] {4, 4});
        assertArrayEquals(new int[] {6, 2}, next);
        // Its jobs finish: the second gets its whole share.
        assertArrayEquals(new int[] {4, 4}, CreditSplit.next(8, next, new int[] {3, 2}, new int[] {4, 4}));
    }

    @Test
    void theTotalToldNeverExceedsTheCredit() {
        Random random = new Random(16);
        for (int round = 0; round < 10_000; round++) {
            int brokers = 1 + random.nextInt(4);
            int credit = random.nextInt(12);
            int[] told = new int[brokers];
            for (int step = 0; step < 20; step++) {
                boolean[] registered = new boolean[brokers];
                int[] held = new int[brokers];
                for (int b = 0; b < brokers; b++) {
                    registered[b] = random.nextBoolean();
                    held[b] = told[b] == 0 ? 0 : random.nextInt(told[b] + 1);
                }
                told = CreditSplit.next(credit, told, held, CreditSplit.shares(credit, registered, random.nextInt(5)));
                assertTrue(Arrays.stream(told).sum() <= credit, Arrays.toString(told) + " over " + credit);
            }
        }
    }
}
