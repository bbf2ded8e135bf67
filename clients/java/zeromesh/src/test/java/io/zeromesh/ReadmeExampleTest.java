// SPDX-License-Identifier: MIT
package io.zeromesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The README's complete example, copied out as a newcomer would, run against a live broker. */
class ReadmeExampleTest {
    @Test
    void theCompleteExampleRunsAsWritten() {
        assertTimeoutPreemptively(TestSupport.seconds(90), () -> {
            String readme = Files.readString(TestSupport.repo().resolve("clients/java/README.md"));
            Matcher m = Pattern.compile("## A complete example.*?```java\n(.*?)```", Pattern.DOTALL).matcher(readme);
            assertTrue(m.find(), "README.md has a complete example in a java block");
            Path dir = Files.createTempDirectory(TestSupport.logDir(), "readme-example");
            Path source = dir.resolve("Hello.java");
            Files.writeString(source, m.group(1));
            try (BrokerProcess broker = new BrokerProcess(TestSupport.logDir()).start()) {
                String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
                String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
                Path out = dir.resolve("output.txt");
                ProcessBuilder pb = new ProcessBuilder(List.of(java, "-cp", classpath, source.toString()))
                        .redirectErrorStream(true).redirectOutput(out.toFile());
                pb.environment().put("ZEROMESH_BROKER", broker.endpoint);
                Process p = pb.start();
                if (!p.waitFor(TestSupport.seconds(60).toMillis(), TimeUnit.MILLISECONDS)) {
                    p.destroyForcibly();
                    throw new AssertionError("the example did not finish within 60 s: " + Files.readString(out));
                }
                String output = Files.readString(out);
                assertEquals(0, p.exitValue(), output);
                assertTrue(output.contains("queued job "), output);
                assertTrue(output.contains("thumbnail of cat.png (attempt 1)"), output);
                assertTrue(output.contains("hello, ann"), output);
            }
        });
    }
}
