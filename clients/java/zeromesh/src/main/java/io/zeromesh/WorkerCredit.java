// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A worker's credit over its sessions (SPEC 2.4): split by {@link CreditSplit}, told to each
 * broker in READY or CREDIT, and split again when a session registers or is lost, held jobs finish,
 * or a broker confirms a lowered credit. What the sessions hold or may still be sent never exceeds
 * the credit.
 */
final class WorkerCredit {
    private final List<WorkerSession> sessions;
    private final int credit;
    /** Rotates the split's list order, so workers do not all favour the first broker. */
    private final int offset;
    private final WorkerWire wire;
    /** Sends READY on a session with its {@code told} credit (and notes the READY's id when lowering). */
    private final Consumer<WorkerSession> ready;

    WorkerCredit(List<WorkerSession> sessions, int credit, int offset, WorkerWire wire, Consumer<WorkerSession> ready) {
        this.sessions = sessions;
        this.credit = credit;
        this.offset = offset;
        this.wire = wire;
        this.ready = ready;
    }

    /** At the start every broker is expected: each first READY offers its share (in total, the credit). */
    void start() {
        boolean[] all = new boolean[sessions.size()];
        Arrays.fill(all, true);
        int[] shares = CreditSplit.shares(credit, all, offset);
        for (WorkerSession s : sessions) {
            s.told = shares[s.index];
            s.bound = s.told;
        }
    }

    /** The credit a READY to unregistered {@code s} offers: its share were it registered, out of what is free. */
    int readyCredit(WorkerSession s) {
        int[] told = told();
        int[] bound = bound();
        CreditSplit.offer(credit, s.index, told, bound, held(), registered(), offset);
        s.told = told[s.index];
        s.bound = bound[s.index];
        return s.told;
    }

    /** {@code s}'s connection was left: its broker sends nothing more on it, and what it held is abandoned. */
    void lost(WorkerSession s, boolean stopping) {
        s.told = 0;
        s.bound = 0;
        s.loweringId = null;
        s.loweringCredit = -1;
        rebalance(stopping);
    }

    /** A READY went to {@code s} with id {@code id}: while a lowering is pending it says that credit, and its answer confirms it. */
    void readySent(WorkerSession s, String id) {
        if (s.loweringCredit >= 0) {
            s.loweringId = id;
        }
    }

    /**
     * A HEARTBEAT from {@code s}'s broker answering {@code re}. When it answers the READY that
     * lowered the credit, every job the broker sent before is held now, and none since can pass
     * that credit: the old bound no longer counts.
     */
    void answered(WorkerSession s, Object re, boolean stopping) {
        if (s.loweringId == null || !s.loweringId.equals(re)) {
            return;
        }
        int lowered = s.loweringCredit;
        s.loweringId = null;
        s.loweringCredit = -1;
        if (s.registered && s.told == lowered) { // else raised again since: that later message counts
            s.bound = lowered;
            rebalance(stopping);
        }
    }

    /**
     * Split the credit again and tell each registered broker whose credit changed: a lower one
     * with READY, a higher one with CREDIT. Nothing changes while stopping (every broker was told
     * 0) or with one broker (its share is the whole credit, as READY said).
     */
    void rebalance(boolean stopping) {
        if (stopping || sessions.size() == 1) {
            return;
        }
        int[] told = told();
        int[] bound = bound();
        int[] verdict = CreditSplit.rebalance(credit, told, bound, held(), registered(), offset);
        for (WorkerSession s : sessions) {
            s.told = told[s.index];
            s.bound = bound[s.index];
            if (verdict[s.index] == CreditSplit.LOWERED) {
                s.loweringCredit = s.told;
                ready.accept(s); // its answer confirms the lower credit
            } else if (verdict[s.index] == CreditSplit.RAISED) {
                wire.control(s, Wire.CREDIT, Map.of("credit", s.told));
            }
        }
    }

    private int[] told() {
        return sessions.stream().mapToInt(s -> s.told).toArray();
    }

    private int[] bound() {
        return sessions.stream().mapToInt(s -> s.bound).toArray();
    }

    private int[] held() {
        return sessions.stream().mapToInt(s -> s.held.size()).toArray();
    }

    private boolean[] registered() {
        boolean[] registered = new boolean[sessions.size()];
        for (WorkerSession s : sessions) {
            registered[s.index] = s.registered;
        }
        return registered;
    }
}
