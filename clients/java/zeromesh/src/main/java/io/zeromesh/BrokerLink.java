// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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
 * ({@link ConnectionMonitor#unreachable}). A broker that refuses the handshake (SPEC.md 14.4)
 * counts as down; {@link #allRefused} says when every broker of the list refuses it. Owned by the
 * client's I/O thread.
 */
final class BrokerLink implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("io.zeromesh.client");

    private final ZContext ctx;
    private final List<String> endpoints;
    private final String list;
    private final long failoverNanos;
    private final long connectTimeoutNanos;
    /** Null: the NULL mechanism. */
    private final CurveSettings curve;
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
    /** The current endpoint's refusal, null while it is not refused. */
    private String refusal;
    private long refusedSince;
    /** The refusal each other endpoint's last turn ended with (none: it was not refused). */
    private final Map<String, String> refusals = new HashMap<>();
    /** Refusals logged, until the endpoint lets the client in: logged once, not at every retry. */
    private final Map<String, String> logged = new HashMap<>();

    BrokerLink(ZContext ctx, List<String> endpoints, CurveSettings curve, long failoverNanos, long connectTimeoutNanos,
            long now) {
        this.ctx = ctx;
        this.curve = curve;
        this.endpoints = endpoints;
        this.list = String.join(",", endpoints);
        this.failoverNanos = failoverNanos;
        this.connectTimeoutNanos = connectTimeoutNanos;
        this.current = endpoints.size() == 1 ? 0 : ThreadLocalRandom.current().nextInt(endpoints.size());
        open(now);
    }

    private void open(long now) {
        sock = Sockets.dealer(ctx);
        if (curve != null) {
            curve.apply(sock, current);
        }
        monitor = new ConnectionMonitor(ctx, sock, endpoint(), curve != null, now);
        sock.connect(endpoint());
        turnStart = now;
        liveThisTurn = false;
        refusal = null;
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
        String refused = monitor.refusal(now);
        if (refused != null && refusal == null) {
            refusedSince = now;
            if (!refused.equals(logged.put(endpoint(), refused))) {
                LOG.log(Level.ERROR, refused);
            }
        }
        refusal = refused;
        if (refusal == null) {
            refusals.remove(endpoint());
        } else {
            refusals.put(endpoint(), refusal);
        }
        if (live()) {
            everLive = true;
            liveThisTurn = true;
            moves.clear();
        }
    }

    /** Connected, and not refused. */
    boolean live() {
        return monitor.live() && refusal == null;
    }

    /** A message came from the broker in use: its handshake worked. */
    void received() {
        monitor.received();
        logged.remove(endpoint());
        refusals.remove(endpoint());
        refusal = null;
    }

    /** The refusal of the broker in use, or null. */
    String refusal() {
        return refusal;
    }

    /**
     * When every broker of the list refuses the handshake (the one in use now, each other one at
     * the end of its last turn): the error for the calls that wait; else null.
     */
    AuthenticationException allRefused() {
        if (refusal == null) {
            return null;
        }
        for (String endpoint : endpoints) {
            if (!refusals.containsKey(endpoint)) {
                return null;
            }
        }
        return new AuthenticationException(refusal);
    }

    /**
     * With one broker, refused: connect again on a fresh socket (JeroMQ does not retry a refused
     * handshake itself, and a key may have been added since). True when it did: the caller
     * registers the new sockets. With several, moving on does the same.
     */
    boolean retryRefused(long now) {
        if (refusal == null || several()) {
            return false;
        }
        closeSockets(0);
        open(now);
        return true;
    }

    /**
     * Move to the next endpoint when the current one has had no live connection for its turn;
     * true when it moved (the caller re-registers the sockets and resends). The old socket closes
     * with linger 0: what it still queued went to a broker that is gone, and is resent.
     */
    boolean moveIfDown(long now) {
        if (!several() || live()) {
            return false;
        }
        long turn = everLive ? failoverNanos : Math.min(failoverNanos, connectTimeoutNanos);
        long down = now - Math.max(turnStart, refusal != null ? refusedSince : monitor.notLiveSince());
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
        LOG.log(Level.WARNING, "broker {0} {1} for {2}s; using {3}", from,
                refusal != null ? "refuses the handshake" : "unreachable", String.format("%.1f", down / 1e9), endpoint());
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
        if (live()) {
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
        monitor.close(); // first: see ConnectionMonitor.close
        sock.setLinger(lingerMs);
        sock.close();
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
