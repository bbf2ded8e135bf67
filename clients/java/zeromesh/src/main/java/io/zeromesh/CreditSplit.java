// SPDX-License-Identifier: MIT
package io.zeromesh;

/**
 * How a worker connected to several brokers splits its credit C (SPEC 2.4). Over the brokers it
 * is registered with, in list order rotated by a per-worker random offset (so workers with C
 * smaller than the number of brokers do not all favour the first one), broker i of n has the
 * target share {@code C / n + (i < C % n ? 1 : 0)}; the others 0.
 *
 * <p>A broker may send up to the credit it was last told, and a lowered credit takes nothing back,
 * so each session counts as {@code max(bound, held)}: {@code held} what it holds now,
 * {@code bound} the highest credit its broker may still be applying. What is free is C minus the
 * sum of those counts, and only what is free is ever given:
 * <ul>
 * <li>a session above its target is lowered to {@code max(target, held)} at once, with READY (the
 *     broker answers a READY, and not a CREDIT), and its bound stays the old credit until that
 *     answer ({@link WorkerCredit#confirmed});</li>
 * <li>a session below its target (a joining broker's READY, a share that grew) gets
 *     {@code min(target, its count + what is free)}, and the rest later, with CREDIT, as jobs
 *     finish elsewhere and lowered sessions are confirmed.</li>
 * </ul>
 * Pure (arrays indexed by list position), so it is tested without sockets.
 */
final class CreditSplit {
    /** {@link #rebalance}'s verdicts per broker. */
    static final int UNCHANGED = 0;
    static final int LOWERED = -1;
    static final int RAISED = 1;

    private CreditSplit() {}

    /** Each broker's target share; {@code registered[b]} says whether broker b (list order) counts. */
    static int[] shares(int credit, boolean[] registered, int offset) {
        int brokers = registered.length;
        int n = 0;
        for (boolean r : registered) {
            if (r) {
                n++;
            }
        }
        int[] shares = new int[brokers];
        if (n == 0) {
            return shares;
        }
        int i = 0;
        for (int k = 0; k < brokers; k++) {
            int b = Math.floorMod(offset + k, brokers);
            if (registered[b]) {
                shares[b] = credit / n + (i < credit % n ? 1 : 0);
                i++;
            }
        }
        return shares;
    }

    /** What the sessions hold or may still be sent: never more than the credit. */
    static int counted(int[] bound, int[] held) {
        int sum = 0;
        for (int b = 0; b < bound.length; b++) {
            sum += Math.max(bound[b], held[b]);
        }
        return sum;
    }

    /**
     * Work the split out again over the registered brokers, changing {@code told} and
     * {@code bound} in place (unregistered ones keep what their READY offered); returns for each
     * broker {@link #LOWERED} (tell it with READY), {@link #RAISED} (with CREDIT) or
     * {@link #UNCHANGED}.
     */
    static int[] rebalance(int credit, int[] told, int[] bound, int[] held, boolean[] registered, int offset) {
        int brokers = told.length;
        int[] target = shares(credit, registered, offset);
        int[] verdict = new int[brokers];
        for (int b = 0; b < brokers; b++) {
            int lower = Math.max(target[b], held[b]);
            if (registered[b] && told[b] > lower) {
                told[b] = lower; // the bound stays until the broker answers the READY
                verdict[b] = LOWERED;
            }
        }
        int free = credit - counted(bound, held);
        for (int k = 0; k < brokers; k++) {
            int b = Math.floorMod(offset + k, brokers);
            int before = told[b];
            if (registered[b] && before < target[b]) {
                free = raise(b, target[b], free, told, bound, held);
                if (told[b] > before) {
                    verdict[b] = RAISED;
                }
            }
        }
        return verdict;
    }

    /**
     * The credit a READY of unregistered broker {@code b} offers: its share were it registered,
     * out of what is free (never less than it already offered); {@code told} and {@code bound} change.
     */
    static int offer(int credit, int b, int[] told, int[] bound, int[] held, boolean[] registered, int offset) {
        boolean[] with = registered.clone();
        with[b] = true;
        raise(b, shares(credit, with, offset)[b], credit - counted(bound, held), told, bound, held);
        return told[b];
    }

    /** Raise broker {@code b} toward {@code target} out of {@code free}; returns what is left free. */
    private static int raise(int b, int target, int free, int[] told, int[] bound, int[] held) {
        int counts = Math.max(bound[b], held[b]);
        int credit = Math.max(told[b], Math.min(target, counts + Math.max(free, 0)));
        told[b] = credit;
        bound[b] = Math.max(bound[b], credit);
        return free - (Math.max(counts, credit) - counts);
    }
}
