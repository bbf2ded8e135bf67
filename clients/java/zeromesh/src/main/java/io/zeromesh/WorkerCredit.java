// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * A worker's credit over its sessions (DESIGN16): split among the registered ones by
 * {@link CreditSplit}, told to each broker in READY or CREDIT, and split again when a session
 * registers or is lost, or held jobs finish. The total told never exceeds the credit.
 */
final class WorkerCredit {
    private final List<WorkerSession> sessions;
    private final int credit;
    /** Rotates the split's list order, so workers do not all favour the first broker. */
    private final int offset;
    private final WorkerWire wire;

    WorkerCredit(List<WorkerSession> sessions, int credit, int offset, WorkerWire wire) {
        this.sessions = sessions;
        this.credit = credit;
        this.offset = offset;
        this.wire = wire;
    }

    /** At the start every broker is expected: each gets its share in its first READY. */
    void start() {
        boolean[] all = new boolean[sessions.size()];
        Arrays.fill(all, true);
        int[] shares = CreditSplit.shares(credit, all, offset);
        for (WorkerSession s : sessions) {
            s.told = shares[s.index];
        }
    }

    /** The credit a READY to {@code s} offers: its share were it registered, out of what the others leave. */
    int readyCredit(WorkerSession s) {
        boolean[] registered = registered();
        registered[s.index] = true;
        int others = 0;
        for (WorkerSession o : sessions) {
            if (o != s) {
                others += o.told;
            }
        }
        return Math.max(0, Math.min(CreditSplit.shares(credit, registered, offset)[s.index], credit - others));
    }

    /**
     * Split the credit again among the registered sessions and send CREDIT to each whose share
     * changed ({@link CreditSplit#next}: the total told never exceeds the credit). Sessions not
     * registered keep what their READY offered. Nothing changes while stopping (every broker was
     * told 0) or with one broker (its share is the whole credit, as READY said).
     */
    void rebalance(boolean stopping) {
        if (stopping || sessions.size() == 1) {
            return;
        }
        int n = sessions.size();
        int[] told = new int[n];
        int[] held = new int[n];
        int[] target = CreditSplit.shares(credit - unregisteredTold(), registered(), offset);
        for (WorkerSession s : sessions) {
            told[s.index] = s.told;
            held[s.index] = s.held.size();
            if (!s.registered) {
                target[s.index] = s.told;
            }
        }
        int[] next = CreditSplit.next(credit, told, held, target);
        for (WorkerSession s : sessions) {
            if (next[s.index] != s.told) {
                s.told = next[s.index];
                if (s.registered) {
                    wire.control(s, Wire.CREDIT, Map.of("credit", s.told));
                }
            }
        }
    }

    private boolean[] registered() {
        boolean[] registered = new boolean[sessions.size()];
        for (WorkerSession s : sessions) {
            registered[s.index] = s.registered;
        }
        return registered;
    }

    private int unregisteredTold() {
        int sum = 0;
        for (WorkerSession s : sessions) {
            if (!s.registered) {
                sum += s.told;
            }
        }
        return sum;
    }
}
