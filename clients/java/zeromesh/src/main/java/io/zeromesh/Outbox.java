// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.util.ArrayList;
import java.util.List;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Other threads to an I/O thread: a list under a lock and an inproc doorbell.
 *
 * <p>The bell rings only when the list was empty, so under load one wake-up of the I/O thread
 * serves many items. The I/O thread must drain the bell before {@link #take()}: then no item is
 * ever left without a ring after it. The bell's PUSH socket is shared by every thread, but only
 * under the lock, which is the full memory barrier ZeroMQ asks for when a socket changes threads.
 */
final class Outbox<T> {
    private final ZContext ctx;
    private final String address;
    private final Object lock = new Object();
    private List<T> items = new ArrayList<>();
    private ZMQ.Socket bell;
    private boolean closed;

    Outbox(ZContext ctx, String address) {
        this.ctx = ctx;
        this.address = address;
    }

    /** Create both ends, in the I/O thread; returns the PULL end to poll. */
    ZMQ.Socket open() {
        ZMQ.Socket pull = ctx.createSocket(SocketType.PULL);
        pull.setLinger(0);
        pull.bind(address);
        ZMQ.Socket push = ctx.createSocket(SocketType.PUSH);
        push.setLinger(0);
        push.setSndHWM(1);
        push.connect(address);
        synchronized (lock) {
            bell = push;
            if (!items.isEmpty()) {
                ring();
            }
        }
        return pull;
    }

    /** Hand an item to the I/O thread; false if the outbox is closed (the item is dropped). */
    boolean put(T item) {
        synchronized (lock) {
            if (closed) {
                return false;
            }
            boolean wasEmpty = items.isEmpty();
            items.add(item);
            if (wasEmpty && bell != null) {
                ring();
            }
            return true;
        }
    }

    private void ring() {
        // An interrupted thread writing to JeroMQ's internal pipe closes it for good
        // (ClosedByInterruptException), breaking the PULL end: ring with the flag clear.
        boolean interrupted = Thread.interrupted();
        try {
            bell.send(new byte[0], ZMQ.DONTWAIT); // false: a ring is already pending
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Everything put since the last take, in order (I/O thread only). */
    List<T> take() {
        synchronized (lock) {
            if (items.isEmpty()) {
                return List.of();
            }
            List<T> taken = items;
            items = new ArrayList<>();
            return taken;
        }
    }

    /** Refuse further puts and close the bell; returns what was never taken. */
    List<T> close() {
        synchronized (lock) {
            closed = true;
            if (bell != null) {
                bell.close();
                bell = null;
            }
            List<T> left = items;
            items = new ArrayList<>();
            return left;
        }
    }

    /** Drain pending rings from the PULL end (I/O thread only). */
    static void drain(ZMQ.Socket pull) {
        while (pull.recv(ZMQ.DONTWAIT) != null) {
            // each ring is an empty frame; its only meaning is "look at the list"
        }
    }
}
