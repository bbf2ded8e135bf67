// SPDX-License-Identifier: MIT
// The Java side of bench/polyglot_bench.py; the same roles, arguments and JSON lines as
// bench_py.py. Run as a single-file program against the built client:
//   java -cp clients/java/zeromesh/target/classes:$(cat clients/java/zeromesh/target/runtime-classpath.txt) bench/polyglot/Bench.java worker ...
// Times are System.nanoTime(), CLOCK_MONOTONIC on Linux: the clock the other languages read.

import io.zeromesh.Client;
import io.zeromesh.Defaults;
import io.zeromesh.Worker;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

public class Bench {
    static double clock() {
        return System.nanoTime() / 1e9;
    }

    static synchronized void emit(String json) {
        System.out.println(json);
        System.out.flush();
    }

    static String num(double v) {
        return String.format(Locale.ROOT, "%.6f", v);
    }

    public static void main(String[] argv) {
        // Errors are printed here: the single-file launcher trims a thrown exception's stack by
        // its own frames and fails with "0 > -1" instead when the exception was made on another
        // thread (a client's errors come from its I/O thread), hiding the cause.
        try {
            run(argv);
        } catch (Throwable e) {
            e.printStackTrace();
            System.exit(1);
        }
    }

    static void run(String[] argv) throws Exception {
        String role = argv[0];
        Map<String, String> a = new HashMap<>(Map.of("concurrency", "4", "credit", "500", "size", "100",
                "callers", "8", "seconds", "3", "warmup", "0.5"));
        for (int i = 1; i + 1 < argv.length; i += 2) {
            a.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
        String endpoint = System.getenv().getOrDefault("ZEROMESH_BROKER", Defaults.BROKER_ENDPOINT);
        byte[] body = "x".repeat(Integer.parseInt(a.get("size"))).getBytes(StandardCharsets.UTF_8);
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        switch (role) {
            case "worker" -> {
                long total = Long.parseLong(a.get("total"));
                long mark = Long.parseLong(a.get("mark"));
                AtomicLong handled = new AtomicLong();
                try (Worker worker = Worker.builder().endpoint(endpoint).label("bench-java")
                        .concurrency(Integer.parseInt(a.get("concurrency")))
                        .credit(Integer.parseInt(a.get("credit"))).build()) {
                    worker.handle(a.get("queue"), job -> {
                        long n = handled.incrementAndGet();
                        if (n == mark) {
                            emit("{\"event\":\"mark\",\"handled\":" + n + ",\"t\":" + num(clock()) + "}");
                        }
                        if (n == total) {
                            emit("{\"event\":\"done\",\"handled\":" + n + ",\"t\":" + num(clock()) + "}");
                        }
                        return null;
                    });
                    worker.handle(a.get("service"), job -> job.body());
                    worker.start();
                    if (!worker.awaitReady(Duration.ofSeconds(10))) {
                        throw new IllegalStateException("Bench worker: not registered within 10 s");
                    }
                    emit("{\"event\":\"ready\"}");
                    while (stdin.readLine() != null) {
                        // until the parent closes our stdin
                    }
                    worker.close(Duration.ofSeconds(2));
                }
            }
            case "push" -> {
                int n = Integer.parseInt(a.get("n"));
                int warm = Integer.parseInt(a.get("warm"));
                try (Client client = Client.builder().endpoint(endpoint).build()) {
                    client.pushMany(a.get("queue"), Collections.nCopies(warm, body), null, Duration.ofSeconds(30));
                    emit("{\"event\":\"warm-pushed\"}");
                    stdin.readLine(); // "go": the worker has handled the warm-up jobs
                    emit("{\"event\":\"start\",\"t\":" + num(clock()) + "}");
                    List<String> ids = client.pushMany(a.get("queue"), Collections.nCopies(n, body), null,
                            Duration.ofSeconds(60));
                    emit("{\"event\":\"confirmed\",\"t\":" + num(clock()) + ",\"n\":" + ids.size()
                            + ",\"mode\":\"pushMany (window 2000, 100 per message)\"}");
                    while (stdin.readLine() != null) {
                        // alive until the parent has read our CPU time
                    }
                }
            }
            case "request" -> {
                int callers = Integer.parseInt(a.get("callers"));
                double start = clock() + Double.parseDouble(a.get("warmup"));
                double end = start + Double.parseDouble(a.get("seconds"));
                emit("{\"event\":\"window\",\"start\":" + num(start) + ",\"end\":" + num(end) + "}");
                List<List<Double>> all = new ArrayList<>();
                try (Client client = Client.builder().endpoint(endpoint).build()) {
                    List<Thread> threads = new ArrayList<>();
                    for (int i = 0; i < callers; i++) {
                        List<Double> mine = new ArrayList<>();
                        all.add(mine);
                        Thread t = new Thread(() -> {
                            while (true) {
                                double t0 = clock();
                                if (t0 >= end) {
                                    return;
                                }
                                client.request(a.get("service"), body, Duration.ofSeconds(5));
                                double t1 = clock();
                                if (t0 >= start && t1 <= end) {
                                    mine.add(t1 - t0);
                                }
                            }
                        });
                        threads.add(t);
                        t.start();
                    }
                    for (Thread t : threads) {
                        t.join();
                    }
                }
                List<Double> lat = new ArrayList<>();
                all.forEach(lat::addAll);
                Collections.sort(lat);
                String p50 = lat.isEmpty() ? "null" : num(lat.get(lat.size() / 2) * 1000);
                String p99 = lat.isEmpty() ? "null" : num(lat.get((int) (lat.size() * 0.99)) * 1000);
                emit("{\"event\":\"result\",\"calls\":" + lat.size() + ",\"window\":" + a.get("seconds")
                        + ",\"p50_ms\":" + p50 + ",\"p99_ms\":" + p99 + "}");
                while (stdin.readLine() != null) {
                    // alive until the parent has read our CPU time
                }
            }
            default -> throw new IllegalArgumentException("usage: Bench worker|push|request ...");
        }
    }
}
