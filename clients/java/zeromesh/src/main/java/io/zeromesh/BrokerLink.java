// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * A producer's or caller's connection to one broker of its list at a time (SPEC, endpoint lists):
 * it starts on a random endpoint (spreading clients over the brokers) and, once the current one
 * has had no live connection for the failover time, moves to the next one, round robin. Before
 * the client ever reached a broker, each endpoint gets the connect timeout instead: nothing
 * listens there, so waiting the failover time would only delay the next one. With one endpoint
 * it never moves, and unreachability is judged exactly as before lists existed
 * ({@link ConnectionMonitor#unreachable}). Owned by the client's I/O thread.
 */
final class BrokerLink implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.client");

    private final ZContext ctx;
    private final List<String> endpoints;
    private final String list;
    private final long failoverNanos;
    private final long connectTimeoutNanos;
    private int current;
    /** The endpoint the last move left. */
    private String previous;
    private ZMQ.Socket sock;
    private ConnectionMonitor monitor;
    /** When the current endpoint's turn began (its socket was made). */
    private long turnStart;
    private boolean everLive;
    /** Whether the current endpoint had a live connection during its turn; at a move, the left one's. */
    private boolean liveThisTurn;
    private boolean lastTurnLive;
    /** When each move since the last live connection happened: a call sees every endpoint tried when n of them follow its start. */
    private final List<Long> moves = new ArrayList<>();

    BrokerLink(ZContext ctx, List<String> endpoints, long failoverNanos, long connectTimeoutNanos, long now) {
        this.ctx = ctx;
        this.endpoints = endpoints;
        this.list = String.join(",", endpoints);
        this.failoverNanos = failoverNanos;
        this.connectTimeoutNanos = connectTimeoutNanos;
        this.current = endpoints.size() == 1 ? 0 : ThreadLocalRandom.current().nextInt(endpoints.size());
        open(now);
    }

    private void open(long now) {
        sock = Sockets.dealer(ctx);
        monitor = new ConnectionMonitor(ctx, sock, now);
        sock.connect(endpoints.get(current));
        turnStart = now;
        liveThisTurn = false;
    }

    ZMQ.Socket socket() {
        return sock;
    }

    ZMQ.Socket monitorSocket() {
        return monitor.socket();
    }

    /** The broker in use. */
    String endpoint() {
        return endpoints.get(current);
    }

    /** The endpoint the last move left (null before any move). */
    String lastEndpoint() {
        return previous;
    }

    /**
     * Whether the endpoint the last move left had a live connection during its turn: if not,
     * nothing sent to it arrived, and calls may go to the next one as they are.
     */
    boolean lastTurnLive() {
        return lastTurnLive;
    }

    /** For messages: the one endpoint, or "any broker of LIST". */
    String describe() {
        return endpoints.size() == 1 ? "the broker at " + endpoints.get(0) : "any broker of " + list;
    }

    boolean several() {
        return endpoints.size() > 1;
    }

    void readMonitor(long now) {
        monitor.read(now);
        if (monitor.live()) {
            everLive = true;
            liveThisTurn = true;
            moves.clear();
        }
    }

    boolean live() {
        return monitor.live();
    }

    /**
     * Move to the next endpoint when the current one has had no live connection for its turn;
     * true when it moved (the caller re-registers the sockets and resends). The old socket closes
     * with linger 0: what it still queued went to a broker that is gone, and is resent.
     */
    boolean moveIfDown(long now) {
        if (!several() || monitor.live()) {
            return false;
        }
        long turn = everLive ? failoverNanos : Math.min(failoverNanos, connectTimeoutNanos);
        long down = now - Math.max(turnStart, monitor.notLiveSince());
        if (down < turn) {
            return false;
        }
        String from = endpoint();
        previous = from;
        lastTurnLive = liveThisTurn;
        closeSockets(0);
        current = (current + 1) % endpoints.size();
        moves.add(now);
        if (moves.size() > endpoints.size()) {
            moves.remove(0); // only the last n can decide unreachable(): times only grow
        }
        LOG.log(Level.WARNING, "broker {0} unreachable for {1}s; using {2}", from,
                String.format("%.1f", down / 1e9), endpoint());
        open(now);
        return true;
    }

    /**
     * The error for calls and pushes that {@link #unreachable} gave up on: "cannot reach the broker
     * at ADDR (WHAT)" with one endpoint, "cannot reach any broker of LIST (WHAT)" with several.
     */
    UnreachableException error(String what) {
        return new UnreachableException("cannot reach " + describe() + " (" + what + ")");
    }

    /**
     * True when a call or push taken at {@code since} has waited long enough without a live
     * connection to give up: with one endpoint, the connect timeout (or the reconnect grace once
     * a connection had been live); with several, once every endpoint has had its turn since then.
     */
    boolean unreachable(long since, long now) {
        if (!several()) {
            return monitor.unreachable(since, now, connectTimeoutNanos);
        }
        if (monitor.live()) {
            return false;
        }
        int after = 0;
        for (long t : moves) {
            if (t - since >= 0) {
                after++;
            }
        }
        return after >= endpoints.size();
    }

    private void closeSockets(int lingerMs) {
        sock.setLinger(lingerMs);
        sock.close();
        monitor.close();
    }

    /** Close, letting what was sent leave within {@code lingerMs}. */
    void close(long lingerMs) {
        closeSockets((int) Math.min(Integer.MAX_VALUE, lingerMs));
    }

    @Override
    public void close() {
        close(0);
    }
}
