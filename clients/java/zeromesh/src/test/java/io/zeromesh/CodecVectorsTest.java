// SPDX-License-Identifier: MIT
package io.zeromesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** The codec against every vector file in protocol/vectors: decode, refuse, and re-encode byte for byte. */
class CodecVectorsTest {
    private static final HexFormat HEX = HexFormat.of();

    static List<Path> vectorFiles() throws IOException {
        try (Stream<Path> walk = Files.walk(TestSupport.vectors())) {
            // schema.json describes the vectors; gaps.json holds subscriber cases (GapVectorsTest), not frames.
            return walk.filter(p -> p.toString().endsWith(".json")
                            && !List.of("schema.json", "gaps.json").contains(p.getFileName().toString()))
                    .sorted().toList();
        }
    }

    static JsonObject load(Path path) throws IOException {
        return JsonParser.parseString(Files.readString(path, StandardCharsets.UTF_8)).getAsJsonObject();
    }

    static String name(Path path) {
        return TestSupport.vectors().relativize(path).toString();
    }

    static List<byte[]> frames(JsonObject vector) {
        List<byte[]> frames = new ArrayList<>();
        for (JsonElement hex : vector.getAsJsonArray("frames_hex")) {
            frames.add(HEX.parseHex(hex.getAsString()));
        }
        return frames;
    }

    @Test
    void thereAreVectors() throws IOException {
        assertTrue(vectorFiles().size() > 100, "vectors found under " + TestSupport.vectors());
    }

    @TestFactory
    Stream<DynamicTest> everyVectorDecodesOrIsRefused() throws IOException {
        return vectorFiles().stream().map(path -> DynamicTest.dynamicTest(name(path), () -> {
            JsonObject vector = load(path);
            // Through the driver's own output, so JSON serialisation is checked too.
            Conformance.Outcome outcome = Conformance.run(Files.readString(path, StandardCharsets.UTF_8));
            if (vector.has("decoded")) {
                assertEquals(0, outcome.status(), outcome.output());
                JsonElement got = JsonParser.parseString(outcome.output());
                assertTrue(JsonValues.same(vector.get("decoded"), got),
                        () -> "decoded " + got + "\nexpected " + vector.get("decoded"));
            } else {
                ProtocolException e = assertThrows(ProtocolException.class, () -> Conformance.decode(vector));
                assertEquals(vector.get("error").getAsString(), e.code(), e.getMessage());
                assertEquals(1, outcome.status());
                assertEquals(vector.get("error").getAsString(), outcome.output());
            }
        }));
    }

    @TestFactory
    Stream<DynamicTest> canonicalVectorsReencodeByteForByte() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        for (Path path : vectorFiles()) {
            JsonObject vector = load(path);
            if (!vector.has("decoded") || (vector.has("canonical") && !vector.get("canonical").getAsBoolean())) {
                continue;
            }
            tests.add(DynamicTest.dynamicTest(name(path), () -> {
                List<String> expected = new ArrayList<>();
                vector.getAsJsonArray("frames_hex").forEach(e -> expected.add(e.getAsString()));
                List<String> got = new ArrayList<>();
                for (byte[] frame : encode(vector)) {
                    got.add(HEX.formatHex(frame));
                }
                assertEquals(expected, got);
            }));
        }
        assertTrue(tests.size() > 50);
        return tests.stream();
    }

    @SuppressWarnings("unchecked")
    private static List<byte[]> encode(JsonObject vector) {
        JsonObject decoded = vector.getAsJsonObject("decoded");
        if (vector.get("endpoint").getAsString().equals("pub")) {
            return Codec.packEvent(decoded.get("topic").getAsString(),
                    (Map<String, Object>) JsonValues.fromJson(decoded.get("header")),
                    HEX.parseHex(decoded.get("body_hex").getAsString()));
        }
        int command = Wire.commandByName(decoded.get("command").getAsString());
        if (decoded.has("items")) {
            List<Item> items = new ArrayList<>();
            for (JsonElement e : (JsonArray) decoded.get("items")) {
                JsonObject item = e.getAsJsonObject();
                items.add(new Item((Map<String, Object>) JsonValues.fromJson(item.get("header")),
                        HEX.parseHex(item.get("body_hex").getAsString())));
            }
            return Codec.packItems(command, items);
        }
        if (decoded.has("bodies_hex")) {
            List<byte[]> bodies = new ArrayList<>();
            for (JsonElement e : decoded.getAsJsonArray("bodies_hex")) {
                bodies.add(HEX.parseHex(e.getAsString()));
            }
            Map<String, Object> header = (Map<String, Object>) JsonValues.fromJson(decoded.get("header"));
            if (Wire.PACKED_COMMANDS.contains(command)) {
                Object sizes = header.remove("sizes"); // packPacked adds them, last, from the bodies
                assertEquals(bodies.stream().map(b -> (long) b.length).toList(), sizes);
                return Codec.packPacked(command, header, bodies);
            }
            return Codec.packBatch(command, header, bodies);
        }
        return Codec.packControl(command, (Map<String, Object>) JsonValues.fromJson(decoded.get("header")));
    }

    @Test
    void everyCommandHasAValidVector() throws IOException {
        java.util.Set<String> seen = new java.util.TreeSet<>();
        for (Path path : vectorFiles()) {
            JsonObject vector = load(path);
            if (vector.has("decoded") && vector.getAsJsonObject("decoded").has("command")) {
                seen.add(vector.getAsJsonObject("decoded").get("command").getAsString());
            }
        }
        assertEquals(new java.util.TreeSet<>(Wire.COMMAND_NAMES.values()), seen);
    }
}
