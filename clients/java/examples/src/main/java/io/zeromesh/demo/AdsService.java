// SPDX-License-Identifier: MIT
package io.zeromesh.demo;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.zeromesh.Client;
import io.zeromesh.Defaults;
import io.zeromesh.Job;
import io.zeromesh.Worker;
import io.zeromesh.ZeromeshException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The demo ecard site's {@code ads} service in Java: what the Python handler in
 * {@code nodes/demo/workers.py} answers, byte for byte in shape, so a card page cannot tell
 * which language served its ad.
 *
 * <pre>
 * request  {"id": "3", "site": "default"}   (from the render nodes' gather; both fields unused, as in Python)
 * reply    {"headline":..., "text":..., "card_id":"3", "title":"Congratulations", "symbol":"★"}
 * </pre>
 *
 * The ads rotate in the Python order (the nth request gets ad n mod 3); each takes
 * {@code --delay} seconds (0.25) on purpose, the slowish part of a page; every
 * {@code --late-every}th takes {@code --late-delay} instead. The advertised card's title and
 * symbol come from the {@code cards} service (the Python demo workers), once per card.
 *
 * <pre>
 * cd clients/java &amp;&amp; mvn -q compile dependency:build-classpath -Dmdep.outputFile=target/cp.txt
 * java -cp examples/target/classes:$(cat examples/target/cp.txt) io.zeromesh.demo.AdsService [--delay S] [--concurrency N]
 * </pre>
 *
 * Start the Python workers with {@code --skip ads} so every ad comes from here ({@code make run}
 * does). Environment: ZEROMESH_BROKER, ZEROMESH_PUB.
 */
public final class AdsService {
    /** The Python ADS list, in its order and with its keys. */
    private static final String[][] ADS = {
        {"Three for two", "Send any three cards this week and the fourth one is on us.", "3"},
        {"Never miss a birthday", "Pick a card today, schedule it for the big day.", "1"},
        {"Say thanks today", "The card people keep on the fridge.", "2"},
    };

    /** Compact, non-ASCII as is: Python's json.dumps(separators=(",", ":"), ensure_ascii=False). */
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

    private final Client client;
    private final Duration delay;
    private final long lateEvery;
    private final Duration lateDelay;
    private final AtomicLong served = new AtomicLong();
    /** card id -> {title, symbol}; cards do not change their titles. */
    private final Map<String, String[]> cards = new ConcurrentHashMap<>();

    public AdsService(Client client, Duration delay, long lateEvery, Duration lateDelay) {
        this.client = client;
        this.delay = delay;
        this.lateEvery = lateEvery;
        this.lateDelay = lateDelay;
    }

    /** The handler of service {@code ads}. */
    public byte[] ad(Job job) throws InterruptedException {
        long n = served.incrementAndGet();
        boolean late = lateEvery > 0 && n % lateEvery == 0;
        Thread.sleep((late ? lateDelay : delay).toMillis()); // the slowish one, on purpose
        String[] ad = ADS[(int) (n % ADS.length)];
        String[] card = card(ad[2]);
        JsonObject out = new JsonObject();
        out.addProperty("headline", ad[0]);
        out.addProperty("text", ad[1]);
        out.addProperty("card_id", ad[2]);
        out.addProperty("title", card == null ? "" : card[0]);
        out.addProperty("symbol", card == null ? "" : card[1]);
        return GSON.toJson(out).getBytes(StandardCharsets.UTF_8);
    }

    /** {title, symbol} of a card from the cards service, or null when there is no such card. */
    private String[] card(String id) {
        String[] known = cards.get(id);
        if (known != null) {
            return known;
        }
        JsonObject ask = new JsonObject();
        ask.addProperty("op", "get");
        ask.addProperty("id", id);
        byte[] reply = client.request("cards", GSON.toJson(ask).getBytes(StandardCharsets.UTF_8), Duration.ofSeconds(1));
        JsonElement card = JsonParser.parseString(new String(reply, StandardCharsets.UTF_8));
        if (!card.isJsonObject()) {
            return null;
        }
        JsonObject c = card.getAsJsonObject();
        String[] got = {c.get("title").getAsString(), c.get("symbol").getAsString()};
        cards.put(id, got);
        return got;
    }

    private static void log(String message) {
        System.err.println(Instant.now() + " INFO AdsService " + message);
    }

    private static Duration seconds(String value) {
        return Duration.ofNanos(Math.round(Double.parseDouble(value) * 1e9));
    }

    /**
     * SIGTERM (a process manager's stop) and SIGINT close the worker, so that run() returns and
     * main closes the client and returns: exit status 0. Left to the JVM, a signal runs the
     * shutdown hooks and then ends the process with status 128 + the signal's number (143).
     * sun.misc.Signal (module jdk.unsupported, kept for this use) is the JDK's only way to
     * handle a signal; javac warns of it under -Xlint, and no annotation silences that.
     */
    private static void stopOnSignals(Worker worker) {
        for (String name : new String[] {"TERM", "INT"}) {
            sun.misc.Signal.handle(new sun.misc.Signal(name), signal -> {
                log("SIG" + name + ": stopping");
                worker.close();
            });
        }
    }

    public static void main(String[] args) throws InterruptedException {
        Duration delay = Duration.ofMillis(250);
        long lateEvery = 0;
        Duration lateDelay = Duration.ofSeconds(3);
        int concurrency = 32;
        String label = "java-ads-" + ProcessHandle.current().pid();
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--delay" -> delay = seconds(value);
                case "--late-every" -> lateEvery = Long.parseLong(value);
                case "--late-delay" -> lateDelay = seconds(value);
                case "--concurrency" -> concurrency = Integer.parseInt(value);
                case "--label" -> label = value;
                default -> {
                    System.err.println("usage: AdsService [--delay S] [--late-every N] [--late-delay S]"
                            + " [--concurrency N] [--label NAME]");
                    System.exit(2);
                }
            }
            i++;
            if (value == null) {
                System.err.println("AdsService: " + args[i - 1] + " needs a value");
                System.exit(2);
            }
        }
        String endpoint = System.getenv().getOrDefault("ZEROMESH_BROKER", Defaults.BROKER_ENDPOINT);
        String pub = System.getenv().getOrDefault("ZEROMESH_PUB", Defaults.PUB_ENDPOINT);
        try (Client client = Client.builder().endpoint(endpoint).pubEndpoint(pub).build();
             Worker worker = Worker.builder().endpoint(endpoint).concurrency(concurrency).label(label).build()) {
            AdsService ads = new AdsService(client, delay, lateEvery, lateDelay);
            worker.handle("ads", ads::ad);
            stopOnSignals(worker); // before the line that says it runs: a supervisor may signal at once
            log("Java ads service: service ads on " + endpoint + " (" + delay.toMillis() + " ms per ad, "
                    + concurrency + " threads)");
            worker.run(); // until SIGTERM/SIGINT: answers what it holds, then leaves
            log("stopped");
        } catch (ZeromeshException e) {
            System.err.println("AdsService: " + e.code() + ": " + e.getMessage());
            System.exit(1);
        }
    }
}
