// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.net.URL;
import java.security.CodeSource;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Which {@code zmq.Signaler} this process loaded: the one this jar carries (JeroMQ's, patched at
 * build time to count a signal before writing it; see the pom and clients/java/README.md) or
 * JeroMQ's own, which lets a thread spin while another is preempted and costs requests
 * milliseconds on a busy machine. The patched class wins only when this jar comes before
 * JeroMQ's on the classpath, as Maven orders a project's dependencies; otherwise say so, once.
 */
final class JeromqSignaler {
    private static final System.Logger LOG = System.getLogger("io.zeromesh");
    private static final AtomicBoolean WARNED = new AtomicBoolean();

    private JeromqSignaler() {
    }

    /** True when {@code zmq.Signaler} was loaded from where this class was. */
    static boolean patched() {
        try {
            return sameSource(Class.forName("zmq.Signaler"), JeromqSignaler.class);
        } catch (ClassNotFoundException e) {
            return false; // no JeroMQ at all: nothing will connect anyway
        }
    }

    static boolean sameSource(Class<?> a, Class<?> b) {
        return Objects.equals(location(a), location(b));
    }

    private static URL location(Class<?> c) {
        CodeSource source = c.getProtectionDomain().getCodeSource();
        return source == null ? null : source.getLocation();
    }

    /** Log a warning the first time a client or worker starts with JeroMQ's own signaler. */
    static void warnIfUnpatched() {
        if (!WARNED.get() && !patched() && WARNED.compareAndSet(false, true)) {
            LOG.log(Level.WARNING, "zeromesh: JeroMQ's own zmq.Signaler was loaded (from {0}), not the patched"
                    + " one in the zeromesh jar ({1}): put the zeromesh jar before JeroMQ's on the classpath,"
                    + " or requests will spend milliseconds spinning on a busy machine (clients/java/README.md)",
                    locationOf("zmq.Signaler"), location(JeromqSignaler.class));
        }
    }

    private static Object locationOf(String name) {
        try {
            return location(Class.forName(name));
        } catch (ClassNotFoundException e) {
            return "nowhere";
        }
    }
}
