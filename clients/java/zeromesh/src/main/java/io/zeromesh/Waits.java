// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** A caller's thread waiting on the client's I/O thread, with every outcome as a {@link ZeromeshException}. */
final class Waits {
    private Waits() {}

    /** The future's value, waiting at most {@code bound}. */
    static <T> T get(CompletableFuture<T> future, Duration bound) {
        try {
            return future.get(bound.toNanos(), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            throw rethrow(e.getCause());
        } catch (TimeoutException e) {
            throw new ZeromeshTimeoutException("no outcome within " + bound.toMillis() + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw interrupted();
        }
    }

    /** Wait for one push; its error, or null once confirmed. */
    static ZeromeshException settle(CompletableFuture<String> push, Duration timeout) {
        try {
            get(push, timeout.plusSeconds(5));
            return null;
        } catch (ZeromeshException e) {
            return e;
        }
    }

    /** Wait for the I/O thread to start or stop. */
    static void await(CountDownLatch latch, Duration bound) {
        try {
            if (!latch.await(bound.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new ZeromeshException("error", "the client's I/O thread did not answer within "
                        + bound.toMillis() + " ms");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ZeromeshException("interrupted", "interrupted");
        }
    }

    /** A failed future's cause as the exception to throw. */
    static ZeromeshException rethrow(Throwable cause) {
        if (cause instanceof ZeromeshException z) {
            return z;
        }
        return new ZeromeshException("error", String.valueOf(cause), cause);
    }

    static ZeromeshException interrupted() {
        return new ZeromeshException("interrupted", "interrupted while waiting for the broker");
    }
}
