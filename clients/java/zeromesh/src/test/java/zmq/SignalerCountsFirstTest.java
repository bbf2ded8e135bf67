// SPDX-License-Identifier: MIT
package zmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.channels.Pipe;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import zmq.util.Errno;

/**
 * The signaler this jar carries counts a signal before writing its byte (clients/java/zeromesh/pom.xml).
 * Shown without timing luck: with the signaler's pipe filled, send() cannot write and keeps trying,
 * so whether it has already counted can be read while it waits; draining the pipe lets it finish.
 * JeroMQ's own class counts only after the write and fails here.
 */
class SignalerCountsFirstTest {
    @Test
    void sendCountsTheSignalBeforeItsByteIsWritten() throws Exception {
        Ctx ctx = new Ctx();
        Signaler signaler = new Signaler(ctx, 1, new Errno());
        try {
            AtomicLong counted = (AtomicLong) field(signaler, "wcursor");
            Pipe.SinkChannel sink = (Pipe.SinkChannel) field(signaler, "w");
            Pipe.SourceChannel source = (Pipe.SourceChannel) field(signaler, "r");
            ByteBuffer filler = ByteBuffer.allocate(1 << 16);
            long filled = 0;
            for (int n = sink.write(filler); n > 0; n = sink.write(filler.clear())) {
                filled += n; // both ends are non-blocking: 0 means the pipe is full
            }
            assertTrue(filled > 0);
            assertEquals(0, counted.get());

            Thread sender = new Thread(signaler::send, "signal-sender");
            sender.setDaemon(true);
            sender.start();
            sender.join(300);
            assertTrue(sender.isAlive(), "send() waits while the pipe is full");
            assertEquals(1, counted.get(), "send() counted its signal before it could write");

            ByteBuffer drain = ByteBuffer.allocate(1 << 16);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (sender.isAlive() && System.nanoTime() < deadline) {
                source.read(drain.clear());
                sender.join(10);
            }
            assertFalse(sender.isAlive(), "send() finished once the pipe had room");
            assertEquals(1, counted.get());
        } finally {
            signaler.close();
            ctx.terminate();
        }
    }

    private static Object field(Object owner, String name) throws ReflectiveOperationException {
        Field f = owner.getClass().getDeclaredField(name);
        f.setAccessible(true);
        return f.get(owner);
    }
}
