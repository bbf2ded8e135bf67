// SPDX-License-Identifier: MIT
package io.zeromesh;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

/**
 * ZMSH/1 conformance driver (protocol/vectors/README.md).
 *
 * <pre>
 * java io.zeromesh.Conformance &lt; vector.json
 *     decoded JSON on stdout and exit 0, or the error code and exit 1; exit 2 if the driver failed
 * java io.zeromesh.Conformance --batch DIR
 *     every *.json under DIR but schema.json and gaps.json, in path order, one line each:
 *     relative/path TAB status TAB output   (status 0, 1 or 2 as above; output on one line)
 * </pre>
 *
 * The batch mode only saves starting a JVM per vector; each file is decoded as in the single mode.
 */
final class Conformance {
    private Conformance() {}

    private static final Gson GSON = new GsonBuilder().serializeNulls().serializeSpecialFloatingPointValues().disableHtmlEscaping()
            .create();

    /** Files of protocol/vectors that hold no frames: the vectors' schema, the subscriber cases (GapVectorsTest). */
    private static final List<String> NOT_FRAMES = List.of("schema.json", "gaps.json");

    /** The outcome of one vector: exit status and what goes to stdout (or stderr, for status 2). */
    record Outcome(int status, String output) {}

    /** Decode a vector's frames; reads only frames_hex, endpoint and max_body, never the answer. */
    static JsonObject decode(JsonObject vector) {
        List<byte[]> frames = new ArrayList<>();
        for (JsonElement hex : vector.getAsJsonArray("frames_hex")) {
            frames.add(HexFormat.of().parseHex(hex.getAsString()));
        }
        String endpoint = vector.has("endpoint") ? vector.get("endpoint").getAsString() : "broker";
        JsonObject out = new JsonObject();
        if (endpoint.equals("pub")) {
            Codec.RawEvent event = Codec.unpackEvent(frames);
            out.addProperty("topic", event.topic());
            out.add("header", JsonValues.toJson(event.header()));
            out.addProperty("body_hex", HexFormat.of().formatHex(event.body()));
            return out;
        }
        long maxBody = vector.has("max_body") && !vector.get("max_body").isJsonNull()
                ? vector.get("max_body").getAsLong() : -1;
        Message message = Codec.unpack(frames, maxBody);
        out.addProperty("command", message.name());
        if (Wire.ITEM_COMMANDS.contains(message.command())) {
            JsonArray items = new JsonArray();
            for (Item item : message.items()) {
                JsonObject o = new JsonObject();
                o.add("header", JsonValues.toJson(item.header()));
                o.addProperty("body_hex", HexFormat.of().formatHex(item.body()));
                items.add(o);
            }
            out.add("items", items);
        } else if (Wire.BATCH_COMMANDS.contains(message.command())
                || Wire.PACKED_COMMANDS.contains(message.command())) { // a packed message decodes as its batch
            out.add("header", JsonValues.toJson(message.header()));
            JsonArray bodies = new JsonArray();
            for (byte[] body : message.bodies()) {
                bodies.add(HexFormat.of().formatHex(body));
            }
            out.add("bodies_hex", bodies);
        } else {
            out.add("header", JsonValues.toJson(message.header()));
        }
        return out;
    }

    static Outcome run(String vectorText) {
        try {
            JsonObject vector = JsonParser.parseString(vectorText).getAsJsonObject();
            return new Outcome(0, GSON.toJson(decode(vector)));
        } catch (ProtocolException e) {
            return new Outcome(1, e.code());
        } catch (RuntimeException e) { // not a vector, or a bug here: status 1 would read as "refused"
            return new Outcome(2, "conformance driver failed: " + e);
        }
    }

    public static void main(String[] args) throws IOException {
        PrintStream stdout = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        if (args.length == 2 && args[0].equals("--batch")) {
            System.exit(batch(Path.of(args[1]), stdout));
        }
        if (args.length != 0) {
            System.err.println("usage: Conformance < vector.json | Conformance --batch DIR");
            System.exit(2);
        }
        String text = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        Outcome outcome = run(text);
        if (outcome.status() == 2) {
            System.err.println(outcome.output());
        } else {
            stdout.println(outcome.output());
        }
        stdout.flush();
        System.exit(outcome.status());
    }

    private static int batch(Path dir, PrintStream stdout) throws IOException {
        List<Path> files;
        try (Stream<Path> walk = Files.walk(dir)) {
            files = walk.filter(p -> p.toString().endsWith(".json") && !NOT_FRAMES.contains(p.getFileName().toString()))
                    .sorted().toList();
        }
        for (Path file : files) {
            Outcome outcome = run(Files.readString(file, StandardCharsets.UTF_8));
            String rel = dir.relativize(file).toString().replace('\\', '/');
            stdout.println(rel + "\t" + outcome.status() + "\t" + outcome.output().replace('\n', ' '));
        }
        stdout.flush();
        return 0;
    }
}
