// SPDX-License-Identifier: MIT
package io.zeromesh.tools;

import io.zeromesh.Client;
import io.zeromesh.Defaults;
import io.zeromesh.Event;
import io.zeromesh.Job;
import io.zeromesh.NoRespondersException;
import io.zeromesh.Subscription;
import io.zeromesh.ZeromeshTimeoutException;
import io.zeromesh.Worker;
import io.zeromesh.ZeromeshException;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * A small command-line driver over the Java client, for scripts and for the cross-language
 * suite ({@code tests/conformance/test_cross_language.py}); the same verbs as the Ruby
 * client's {@code bin/zeromesh-rb}. It uses the library's public API only, as any program would:
 *
 * <pre>
 * cd clients/java &amp;&amp; mvn -q compile dependency:build-classpath -Dmdep.outputFile=target/cp.txt
 * java -cp examples/target/classes:$(cat examples/target/cp.txt) io.zeromesh.tools.Cli VERB ...
 *
 * push QUEUE [FILE...]                        no FILE: body from stdin, prints the id; else one id per file
 * work QUEUE --count N --out DIR [--hold S] [--label L] [--timeout S]
 *                                             the n-th body to DIR/n.bin, "n TAB id TAB attempt TAB size"
 *                                             to DIR/ids.log, ACK; exit 0 after N jobs
 * serve SERVICE --mode echo|sha256|fail|sleep [SERVICE --mode M]... [--sleep S] [--label L]
 *                                             serve until SIGTERM/SIGINT
 * request SERVICE [--timeout S] [FILE...]     no FILE: body stdin, reply stdout; else each reply to FILE.reply
 * subscribe PREFIX... --count N --out DIR [--warmup TOPIC] [--timeout S]
 *                                             the n-th event body to DIR/n.bin, "n TAB topic TAB seq TAB gap
 *                                             TAB size" to DIR/events.log; --warmup: also TOPIC, print "warm"
 *                                             on its first event, ignore it otherwise
 * </pre>
 *
 * <p>Endpoints come from ZEROMESH_BROKER and ZEROMESH_PUB (or --endpoint / --pub-endpoint); CURVE
 * keys from ZEROMESH_CURVE_SERVER and ZEROMESH_CURVE_SECRET (the library reads them). A broker that
 * refuses the handshake ends any verb with status 1 and "unauthenticated" on stderr, a command
 * outside the key's roles with status 1 and "forbidden".
 * Long-running verbs print progress on stdout: "ready", "start ID ATTEMPT", "done N ID ATTEMPT",
 * "warm", "event N TOPIC SEQ". Exit status: 0 done, 1 error, 2 timeout, 3 no responders, 64
 * usage; on an error the protocol's error code is the first line on stderr, the message the
 * second (a request timeout adds "elapsed S s").
 */
public final class Cli {
    static final String USAGE = String.join("\n",
            "usage: Cli push QUEUE [FILE...]",
            "       Cli work QUEUE --count N --out DIR [--hold S] [--label L] [--timeout S]",
            "       Cli serve SERVICE --mode echo|sha256|fail|sleep [SERVICE --mode M]... [--sleep S] [--label L]",
            "       Cli request SERVICE [--timeout S] [FILE...]",
            "       Cli subscribe PREFIX... --count N --out DIR [--warmup TOPIC] [--timeout S]",
            "common options: --endpoint TCP_URL --pub-endpoint TCP_URL");
    static final Set<String> MODES = Set.of("echo", "sha256", "fail", "sleep");

    private final Map<String, String> opts = new LinkedHashMap<>();
    private final List<String> positional = new ArrayList<>();
    private final List<String[]> pairs = new ArrayList<>();
    private final PrintStream out;

    static final class Usage extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Usage(String message) {
            super(message);
        }
    }

    /** What a serve handler in --mode fail throws. */
    static final class FailedOnPurpose extends Exception {
        private static final long serialVersionUID = 1L;

        FailedOnPurpose(String message) {
            super(message);
        }
    }

    private Cli(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] args) {
        int status;
        try {
            status = new Cli(System.out).run(args);
        } catch (Usage e) {
            System.err.println("zeromesh Cli: " + e.getMessage());
            System.err.println(USAGE);
            status = 64;
        } catch (RuntimeException e) {
            System.err.println("error");
            System.err.println(e);
            status = 1;
        }
        System.out.flush();
        System.exit(status);
    }

    int run(String[] args) {
        if (args.length == 0) {
            throw new Usage("no verb");
        }
        parse(args);
        try {
            return switch (args[0]) {
                case "push" -> push();
                case "work" -> work();
                case "serve" -> serve();
                case "request" -> request();
                case "subscribe" -> subscribe();
                default -> throw new Usage("unknown verb '" + args[0] + "'");
            };
        } catch (ZeromeshException e) {
            return failure(e, null);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return failure(new ZeromeshException("interrupted", "interrupted"), null);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** --name VALUE options (the last wins), positional words, and (service, mode) pairs. */
    private void parse(String[] args) {
        for (int i = 1; i < args.length; i++) {
            String word = args[i];
            if (!word.startsWith("--")) {
                positional.add(word);
                continue;
            }
            if (i + 1 >= args.length) {
                throw new Usage(word + " needs a value");
            }
            String key = word.substring(2);
            String value = args[++i];
            if (key.equals("mode")) {
                if (positional.isEmpty()) {
                    throw new Usage("--mode " + value + " follows no service");
                }
                if (!MODES.contains(value)) {
                    throw new Usage("unknown mode '" + value + "' (echo, sha256, fail, sleep)");
                }
                pairs.add(new String[] {positional.remove(positional.size() - 1), value});
            } else {
                opts.put(key, value);
            }
        }
    }

    private Duration seconds(String key, double fallback) {
        String value = opts.get(key);
        try {
            double s = value == null ? fallback : Double.parseDouble(value);
            return Duration.ofNanos((long) (s * 1e9));
        } catch (NumberFormatException e) {
            throw new Usage("--" + key + " wants a number, not '" + value + "'");
        }
    }

    private int count() {
        String value = opts.get("count");
        if (value == null) {
            throw new Usage("--count N is required");
        }
        try {
            int n = Integer.parseInt(value);
            if (n > 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw new Usage("--count wants a positive integer");
    }

    private Path outDir() throws IOException {
        String dir = opts.get("out");
        if (dir == null) {
            throw new Usage("--out DIR is required");
        }
        return Files.createDirectories(Path.of(dir));
    }

    private String endpoint() {
        return opts.getOrDefault("endpoint", env("ZEROMESH_BROKER", Defaults.BROKER_ENDPOINT));
    }

    private Client client() {
        return Client.builder().endpoint(endpoint())
                .pubEndpoint(opts.getOrDefault("pub-endpoint", env("ZEROMESH_PUB", Defaults.PUB_ENDPOINT)))
                .failover(failover())
                .build();
    }

    /** ZEROMESH_FAILOVER_S: with several brokers, how long the one in use may be unreachable before the next. */
    private static java.time.Duration failover() {
        String seconds = System.getenv("ZEROMESH_FAILOVER_S");
        if (seconds == null || seconds.isBlank()) {
            return Defaults.FAILOVER;
        }
        try {
            return java.time.Duration.ofMillis(Math.round(Double.parseDouble(seconds.strip()) * 1000));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("ZEROMESH_FAILOVER_S is not a number of seconds: '" + seconds + "'");
        }
    }

    private Worker.Builder workerBuilder(int concurrency) {
        Worker.Builder b = Worker.builder().endpoint(endpoint()).concurrency(concurrency);
        if (opts.containsKey("label")) {
            b.label(opts.get("label"));
        }
        return b;
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }

    /** Each FILE's bytes (path, body), or stdin's (null, body) when there is none. */
    private List<Map.Entry<Path, byte[]>> bodies(List<String> files) throws IOException {
        List<Map.Entry<Path, byte[]>> bodies = new ArrayList<>();
        if (files.isEmpty()) {
            bodies.add(new java.util.AbstractMap.SimpleEntry<>(null, System.in.readAllBytes()));
        }
        for (String f : files) {
            bodies.add(Map.entry(Path.of(f), Files.readAllBytes(Path.of(f))));
        }
        return bodies;
    }

    /** The error code (stderr line 1) and message; returns the exit status. */
    private static int failure(ZeromeshException e, String extra) {
        System.err.println(e.code());
        System.err.println(e.getMessage() + (extra == null ? "" : " (" + extra + ")"));
        System.err.flush();
        if (e instanceof ZeromeshTimeoutException) {
            return 2;
        }
        return e instanceof NoRespondersException ? 3 : 1;
    }

    private void say(String line) {
        out.println(line);
        out.flush();
    }

    // -- verbs ----------------------------------------------------------------

    private int push() throws IOException {
        if (positional.isEmpty()) {
            throw new Usage("push needs a QUEUE");
        }
        String queue = positional.get(0);
        Duration timeout = seconds("timeout", Defaults.PUSH_TIMEOUT.toMillis() / 1000.0);
        List<Map.Entry<Path, byte[]>> bodies = bodies(positional.subList(1, positional.size()));
        try (Client client = client()) {
            for (Map.Entry<Path, byte[]> b : bodies) {
                say(client.push(queue, b.getValue(), null, timeout));
            }
        }
        return 0;
    }

    private int request() throws IOException {
        if (positional.isEmpty()) {
            throw new Usage("request needs a SERVICE");
        }
        String service = positional.get(0);
        Duration timeout = seconds("timeout", Defaults.REQUEST_TIMEOUT.toMillis() / 1000.0);
        List<Map.Entry<Path, byte[]>> bodies = bodies(positional.subList(1, positional.size()));
        try (Client client = client()) {
            for (Map.Entry<Path, byte[]> b : bodies) {
                long started = System.nanoTime();
                byte[] reply;
                try {
                    reply = client.request(service, b.getValue(), timeout);
                } catch (ZeromeshTimeoutException e) {
                    return failure(e, String.format("elapsed %.3f s", (System.nanoTime() - started) / 1e9));
                }
                if (b.getKey() == null) {
                    out.write(reply);
                    out.flush();
                } else {
                    Files.write(Path.of(b.getKey() + ".reply"), reply);
                }
            }
        }
        return 0;
    }

    private int work() throws IOException, InterruptedException {
        if (positional.size() != 1) {
            throw new Usage("work needs exactly one QUEUE");
        }
        String queue = positional.get(0);
        int wanted = count();
        Path dir = outDir();
        Duration hold = seconds("hold", 0);
        Duration timeout = seconds("timeout", 60);
        Semaphore finished = new Semaphore(0);
        int[] n = {0};
        Worker worker = workerBuilder(1).build();
        worker.handle(queue, job -> {
            say("start " + job.id() + " " + job.attempt());
            if (!hold.isZero()) {
                Thread.sleep(hold.toMillis());
            }
            int k = ++n[0]; // one handler thread
            Files.write(dir.resolve(k + ".bin"), job.body());
            Files.writeString(dir.resolve("ids.log"),
                    k + "\t" + job.id() + "\t" + job.attempt() + "\t" + job.body().length + "\n",
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            say("done " + k + " " + job.id() + " " + job.attempt());
            finished.release();
            return null;
        });
        try {
            worker.start();
            if (!worker.awaitReady(Duration.ofSeconds(10))) {
                throw new ZeromeshTimeoutException("not registered with the broker within 10 s");
            }
            say("ready");
            if (!finished.tryAcquire(wanted, timeout.toNanos(), TimeUnit.NANOSECONDS)) {
                System.err.println("timeout");
                System.err.println(finished.availablePermits() + " of " + wanted + " jobs within "
                        + timeout.toMillis() / 1000.0 + " s");
                return 2;
            }
            return 0;
        } finally {
            worker.close(Duration.ofSeconds(5));
        }
    }

    private int serve() throws InterruptedException {
        if (pairs.isEmpty() || !positional.isEmpty()) {
            throw new Usage("serve wants SERVICE --mode MODE [SERVICE --mode MODE]...");
        }
        Duration sleep = seconds("sleep", 10);
        Worker worker = workerBuilder(4).build();
        for (String[] pair : pairs) {
            String mode = pair[1];
            worker.handle(pair[0], job -> answer(mode, job, sleep));
        }
        worker.start();
        if (!worker.awaitReady(Duration.ofSeconds(10))) {
            worker.close(Duration.ofSeconds(1));
            throw new ZeromeshTimeoutException("not registered with the broker within 10 s");
        }
        say("ready");
        worker.run(); // until SIGTERM or SIGINT (a shutdown hook closes it gracefully)
        return 0;
    }

    private static byte[] answer(String mode, Job job, Duration sleep) throws Exception {
        switch (mode) {
            case "echo":
                return job.body();
            case "sha256":
                return HexFormat.of().formatHex(sha256(job.body())).getBytes(StandardCharsets.US_ASCII);
            case "fail":
                throw new FailedOnPurpose("failed on purpose (" + job.body().length + " bytes)");
            default: // sleep
                long deadline = System.nanoTime() + sleep.toNanos();
                while (!job.isCancelled() && System.nanoTime() < deadline) {
                    Thread.sleep(20);
                }
                return "slept".getBytes(StandardCharsets.US_ASCII);
        }
    }

    private static byte[] sha256(byte[] body) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(body);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private int subscribe() throws IOException {
        if (positional.isEmpty()) {
            throw new Usage("subscribe needs a PREFIX");
        }
        int wanted = count();
        Path dir = outDir();
        Duration timeout = seconds("timeout", 60);
        String warmup = opts.get("warmup");
        List<String> prefixes = new ArrayList<>(positional);
        if (warmup != null) {
            prefixes.add(warmup);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        boolean warm = false;
        int got = 0;
        try (Client client = client(); Subscription sub = client.subscribe(prefixes.toArray(String[]::new))) {
            say("ready");
            while (got < wanted) {
                long left = deadline - System.nanoTime();
                Event event = left > 0 ? sub.next(Duration.ofNanos(left)) : null;
                if (event == null) {
                    System.err.println("timeout");
                    System.err.println(got + " of " + wanted + " events within " + timeout.toMillis() / 1000.0 + " s");
                    return 2;
                }
                if (event.topic().equals(warmup)) {
                    if (!warm) {
                        say("warm");
                    }
                    warm = true;
                    continue;
                }
                got++;
                Files.write(dir.resolve(got + ".bin"), event.body());
                Files.writeString(dir.resolve("events.log"),
                        got + "\t" + event.topic() + "\t" + event.seq() + "\t" + event.gap() + "\t"
                                + event.body().length + "\n",
                        StandardOpenOption.CREATE, StandardOpenOption.APPEND);
                say("event " + got + " " + event.topic() + " " + event.seq());
            }
        }
        return 0;
    }
}
