// SPDX-License-Identifier: MIT
package io.zeromesh;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * CURVE keys made as an operator makes them, with {@code python -m zeromesh keys new}: a broker
 * pair, and client pairs whose public certificates go to the broker's clients directory (secrets
 * stay apart). Strangers are keys the broker never saw.
 */
final class TestKeys {
    private final Path root;

    TestKeys(Path root) throws IOException, InterruptedException {
        this.root = root;
        Files.createDirectories(clients());
        keysNew(root.resolve("broker"), "broker", List.of());
    }

    Path clients() {
        return root.resolve("clients");
    }

    Path brokerPublic() {
        return root.resolve("broker/broker.key");
    }

    Path brokerSecret() {
        return root.resolve("broker/broker.key_secret");
    }

    /** A new client key with these grants, its public certificate in the clients directory; returns its secret. */
    Path add(String name, String... grants) throws IOException, InterruptedException {
        Path secrets = root.resolve("secrets");
        keysNew(secrets, name, List.of(grants));
        Files.move(secrets.resolve(name + ".key"), clients().resolve(name + ".key"));
        return secret(name);
    }

    Path secret(String name) {
        return root.resolve("secrets").resolve(name + ".key_secret");
    }

    /** A key pair the broker does not know; returns its secret. */
    Path stranger(String name) throws IOException, InterruptedException {
        keysNew(root.resolve("strangers"), name, List.of("producer"));
        return root.resolve("strangers").resolve(name + ".key_secret");
    }

    /** A public certificate that is not the broker's (a wrong server key). */
    Path strangerPublic(String name) {
        return root.resolve("strangers").resolve(name + ".key");
    }

    /** Take the key out of the broker's clients directory (the broker reloads within a second). */
    void remove(String name) throws IOException {
        Files.delete(clients().resolve(name + ".key"));
    }

    private static void keysNew(Path dir, String name, List<String> grants) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(BrokerProcess.python(), "-m", "zeromesh", "keys", "new", name,
                "--dir", dir.toString()));
        for (String grant : grants) {
            command.add("--role");
            command.add(grant);
        }
        Process p = new ProcessBuilder(command).directory(TestSupport.repo().toFile()).redirectErrorStream(true).start();
        if (!p.waitFor(TestSupport.seconds(30).toMillis(), TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("zeromesh keys new " + name + " did not finish");
        }
        String out = new String(p.getInputStream().readAllBytes());
        if (p.exitValue() != 0) {
            throw new IllegalStateException("zeromesh keys new " + name + " failed: " + out);
        }
    }
}
