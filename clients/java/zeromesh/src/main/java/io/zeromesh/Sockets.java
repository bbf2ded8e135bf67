// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.ArrayList;
import java.util.List;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/** Socket options every zeromesh peer sets, and multipart send/receive, in one place. */
final class Sockets {
    private Sockets() {}

    /** A first reconnect after a broker restart comes quickly... */
    static final int RECONNECT_IVL_MS = 100;
    /** ...and backs off to at most this, so a restarted broker is found within ~1.5 s. */
    static final int RECONNECT_IVL_MAX_MS = 1500;
    static final int HEARTBEAT_IVL_MS = 1000;
    static final int HEARTBEAT_TIMEOUT_MS = 3000;
    /** Messages queued per socket direction. */
    static final int HWM = 10_000;
    /** Subscribers buffer more: a slow reader drops events (seen as gaps) rather than stalling. */
    static final int SUB_RCVHWM = 100_000;

    /**
     * A DEALER with the options of every peer, not yet connected (to set its CURVE keys and
     * monitor it first); create it in the thread that will use it.
     */
    static ZMQ.Socket dealer(ZContext ctx) {
        ZMQ.Socket sock = ctx.createSocket(SocketType.DEALER);
        sock.setLinger(0);
        sock.setReconnectIVL(RECONNECT_IVL_MS);
        sock.setReconnectIVLMax(RECONNECT_IVL_MAX_MS);
        sock.setSndHWM(HWM);
        sock.setRcvHWM(HWM);
        heartbeats(sock);
        return sock;
    }

    /** ZMTP pings: a link cut without a reset sends nothing back; after the timeout the connection
     * is dropped, the monitor sees it, and clients move on to another broker (SPEC 2.4). */
    private static void heartbeats(ZMQ.Socket sock) {
        sock.setHeartbeatIvl(HEARTBEAT_IVL_MS);
        sock.setHeartbeatTimeout(HEARTBEAT_TIMEOUT_MS);
    }

    /** A SUB with the options of every subscriber, not yet connected (to monitor it first). */
    static ZMQ.Socket sub(ZContext ctx) {
        ZMQ.Socket sock = ctx.createSocket(SocketType.SUB);
        sock.setLinger(0);
        sock.setReconnectIVL(RECONNECT_IVL_MS);
        sock.setReconnectIVLMax(RECONNECT_IVL_MAX_MS);
        sock.setRcvHWM(SUB_RCVHWM);
        heartbeats(sock);
        return sock;
    }

    /**
     * Connect {@code sock} to every endpoint, so it hears every broker's events on one socket;
     * with {@code curve}, as a CURVE client of each (a connection takes the options set when it
     * is made, so each endpoint gets its own server key).
     */
    static void connectAll(ZMQ.Socket sock, List<String> endpoints, CurveSettings curve) {
        for (int i = 0; i < endpoints.size(); i++) {
            if (curve != null) {
                curve.apply(sock, i);
            }
            sock.connect(endpoints.get(i));
        }
    }

    /** Queue all frames without blocking; false (nothing sent) when the send queue is full. */
    static boolean trySend(ZMQ.Socket sock, List<byte[]> frames) {
        int last = frames.size() - 1;
        for (int i = 0; i <= last; i++) {
            int flags = ZMQ.DONTWAIT | (i < last ? ZMQ.SNDMORE : 0);
            if (!sock.send(frames.get(i), flags) && i == 0) {
                return false; // ZeroMQ takes the rest of a message once it took its first frame
            }
        }
        return true;
    }

    /** The next whole message, or null if none is waiting. */
    static List<byte[]> tryRecv(ZMQ.Socket sock) {
        byte[] first = sock.recv(ZMQ.DONTWAIT);
        if (first == null) {
            return null;
        }
        List<byte[]> frames = new ArrayList<>(4);
        frames.add(first);
        while (sock.hasReceiveMore()) {
            frames.add(sock.recv(0));
        }
        return frames;
    }
}
