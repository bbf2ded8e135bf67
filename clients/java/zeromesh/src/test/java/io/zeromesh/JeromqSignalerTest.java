// SPDX-License-Identifier: MIT
package io.zeromesh;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Which zmq.Signaler a process loaded, told by the marker field the build adds to the patched one. */
class JeromqSignalerTest {
    private static final String WARNING = "JeroMQ's own zmq.Signaler was loaded";

    @Test
    void thePatchedSignalerComesFirstOnThisClasspath() {
        assertTrue(JeromqSignaler.patched(), "zmq.Signaler should load from the zeromesh classes, not JeroMQ's jar");
    }

    @Test
    void aClassWithoutTheMarkerReadsAsUnpatched() throws Exception {
        assertTrue(JeromqSignaler.carriesMarker(Class.forName("zmq.Signaler")));
        assertFalse(JeromqSignaler.carriesMarker(zmq.Mailbox.class)); // JeroMQ's own, beside it
    }

    @Test
    void aWorkerBuiltWithJeromqsOwnSignalerSaysSoOnce() throws Exception {
        List<String> entries = new ArrayList<>(Arrays.asList(testClasspath().split(File.pathSeparator)));
        String jeromq = entries.stream().filter(e -> Path.of(e).getFileName().toString().startsWith("jeromq-"))
                .findFirst().orElseThrow(() -> new AssertionError("no JeroMQ jar on " + entries));
        entries.remove(jeromq);
        entries.add(0, jeromq);

        String unpatched = run(String.join(File.pathSeparator, entries));
        assertEquals(1, count(unpatched, WARNING), unpatched);
        assertTrue(unpatched.contains(jeromq), "the warning names where the class came from: " + unpatched);
        assertEquals(0, count(run(testClasspath()), WARNING), "no warning with the patched class first");
    }

    /** Builds two workers and exits (no broker needed: a Worker connects only on start()). */
    public static void main(String[] args) {
        Worker.builder().endpoint("tcp://127.0.0.1:9").build();
        Worker.builder().endpoint("tcp://127.0.0.1:9").build();
        System.exit(0);
    }

    private static String testClasspath() {
        return System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    }

    private static String run(String classpath) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-cp", classpath, JeromqSignalerTest.class.getName())
                .redirectErrorStream(true).start();
        if (!p.waitFor(TestSupport.seconds(30).toMillis(), TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the JVM did not exit within 30 s");
        }
        String out = new String(p.getInputStream().readAllBytes(), UTF_8);
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    private static int count(String text, String part) {
        int n = 0;
        for (int i = text.indexOf(part); i >= 0; i = text.indexOf(part, i + 1)) {
            n++;
        }
        return n;
    }
}
