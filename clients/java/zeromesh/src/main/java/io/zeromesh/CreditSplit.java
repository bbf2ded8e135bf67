// SPDX-License-Identifier: MIT
package io.zeromesh;

/**
 * How a worker connected to several brokers splits its credit C (SPEC, workers): over the
 * brokers it is registered with, in list order rotated by a per-worker random offset (so workers
 * with C smaller than the number of brokers do not all favour the first one), broker i of n gets
 * {@code C / n + (i < C % n ? 1 : 0)}; the others get 0. Pure, so it is tested without sockets.
 */
final class CreditSplit {
    private CreditSplit() {}

    /** Each broker's share; {@code registered[b]} says whether broker b (list order) counts. */
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

    /**
     * What to tell each broker now, given what each was told last, what each holds and the target
     * shares, so that the total told never exceeds {@code credit}: a broker may send up to what it
     * was told, so a share is raised only out of what the others no longer have. Lowering comes
     * first and never goes below what a broker holds (the broker reads credit as a cap: credit at
     * or below held means "send nothing more"); raising then takes what is left, in list order.
     * Once the held jobs finish, calling this again raises the shares that had to wait.
     */
    static int[] next(int credit, int[] told, int[] held, int[] target) {
        int brokers = told.length;
        int[] next = new int[brokers];
        int sum = 0;
        for (int b = 0; b < brokers; b++) {
            next[b] = Math.min(told[b], Math.max(target[b], held[b]));
            sum += next[b];
        }
        for (int b = 0; b < brokers; b++) {
            if (target[b] > next[b] && sum < credit) {
                int raise = Math.min(target[b] - next[b], credit - sum);
                next[b] += raise;
                sum += raise;
            }
        }
        return next;
    }
}
