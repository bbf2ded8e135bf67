// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.lang.System.Logger.Level;
import java.net.URL;
import java.security.CodeSource;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Which {@code zmq.Signaler} this process loaded: the one this jar carries (JeroMQ's, patched at
 * build time to count a signal before writing it and to carry a marker field; see the pom and
 * clients/java/README.md) or JeroMQ's own, which lets a thread spin while another is preempted
 * and costs requests milliseconds on a busy machine. The patched class wins only when this jar comes before
 * JeroMQ's on the classpath, as Maven orders a project's dependencies; otherwise say so, once.
 */
final class JeromqSignaler {
    private static final System.Logger LOG = System.getLogger("io.zeromesh");
    private static final AtomicBoolean WARNED = new AtomicBoolean();

    private JeromqSignaler() {
    }

    /** The field the build adds to the patched class (zeromesh/pom.xml). */
    static final String MARKER = "ZEROMESH_COUNTS_FIRST";

    /** True when the loaded {@code zmq.Signaler} is the patched one. */
    static boolean patched() {
        try {
            return carriesMarker(Class.forName("zmq.Signaler"));
        } catch (ClassNotFoundException e) {
            return false; // no JeroMQ at all: nothing will connect anyway
        }
    }

    /** By the marker, not by where the class came from: a jar that merged this one and
     * JeroMQ's holds only one of the two classes, from one place. */
    static boolean carriesMarker(Class<?> c) {
        try {
            c.getDeclaredField(MARKER);
            return true;
        } catch (NoSuchFieldException e) {
            return false;
        }
    }

    private static URL location(Class<?> c) {
        CodeSource source = c.getProtectionDomain().getCodeSource();
        return source == null ? null : source.getLocation();
    }

    /** Log a warning the first time a client or worker starts with JeroMQ's own signaler. */
    static void warnIfUnpatched() {
        if (!WARNED.get() && !patched() && WARNED.compareAndSet(false, true)) {
            // Built here rather than by the logger's MessageFormat, where an apostrophe quotes.
            LOG.log(Level.WARNING, "zeromesh: JeroMQ's own zmq.Signaler was loaded (from " + locationOf("zmq.Signaler")
                    + "), not the patched one in the zeromesh jar (" + location(JeromqSignaler.class)
                    + "): put the zeromesh jar before JeroMQ's on the classpath, or requests will spend"
                    + " milliseconds spinning on a busy machine (clients/java/README.md)");
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
