// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.HashMap;
import java.util.Map;
import org.zeromq.ZMQ;

/**
 * A worker's session with one broker of its list: its DEALER (replaced on every reconnection,
 * each connection a new generation), whether that broker has registered the worker, the jobs it
 * holds from that broker and the credit last told to it. Plain state, owned by {@link WorkerIO}.
 */
final class WorkerSession {
    final String endpoint;
    /** Position in the worker's list, for the credit split's order. */
    final int index;
    ZMQ.Socket sock;
    int sockIndex = -1;
    /** Watches the current socket's connection and handshakes; replaced with it. */
    ConnectionMonitor monitor;
    int monitorIndex = -1;
    /** Why this broker refuses the worker's handshake (across reconnections, until it lets it in); null if it does not. */
    String refusal;
    long refusedSince;
    /** Unique across the worker's sessions, so a job's generation also names its session. */
    long generation;
    String epoch;
    /** Until the broker shows it knows us, each beat is a READY: a READY can be lost. */
    boolean registered;
    long lastRecv;
    long reconnectAt;
    boolean waitingToReconnect;
    long backoff;
    /** The credit this broker was last told (READY or CREDIT). */
    int told;
    /** The most this broker may still be applying: a lowered credit counts once the broker answers its READY. */
    int bound;
    /** The READY that lowers the credit to {@link #loweringCredit}, until the broker answers it; null if none. */
    String loweringId;
    /** The credit a lowering READY carries; -1 when none is pending. */
    int loweringCredit = -1;
    final Map<String, Job> held = new HashMap<>();

    WorkerSession(String endpoint, int index, long backoff) {
        this.endpoint = endpoint;
        this.index = index;
        this.backoff = backoff;
    }
}
