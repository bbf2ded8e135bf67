// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The caller's side of a {@link Client}: hand an operation to the I/O thread, and wait for the
 * answer to a call, telling the I/O thread to forget it when the wait ends without one (so a late
 * answer is dropped there). Any thread may use it.
 */
final class ClientCalls {
    private final Outbox<ClientOp> outbox;
    private volatile boolean closed;

    ClientCalls(Outbox<ClientOp> outbox) {
        this.outbox = outbox;
    }

    /** Hand {@code op} to the I/O thread; ZeromeshException "closed" once the client is closed. */
    void submit(ClientOp op) {
        if (closed || !outbox.put(op)) {
            throw new ZeromeshException("closed", "the client is closed");
        }
    }

    void ensureOpen() {
        if (closed) {
            throw new ZeromeshException("closed", "the client is closed");
        }
    }

    /** Refuse every later call; true the first time. */
    boolean close() {
        if (closed) {
            return false;
        }
        closed = true;
        return true;
    }

    /** Send and wait for the REPLY or ERROR whose re is {@code key}; null when nothing came in time. */
    Item call(String key, List<byte[]> frames, Duration wait) {
        return call(new ClientOp.Call(key, frames, new CompletableFuture<>()), wait);
    }

    Item call(ClientOp.Call op, Duration wait) {
        String key = op.key();
        CompletableFuture<Item> future = op.result();
        submit(op);
        try {
            return future.get(wait.toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            future.cancel(false);
            outbox.put(new ClientOp.Forget(key));
            return null;
        } catch (ExecutionException e) {
            throw Waits.rethrow(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            outbox.put(new ClientOp.Forget(key));
            throw Waits.interrupted();
        }
    }
}
