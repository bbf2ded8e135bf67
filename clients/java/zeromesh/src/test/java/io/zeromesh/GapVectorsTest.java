// SPDX-License-Identifier: MIT
package io.zeromesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/** Every case of protocol/vectors/gaps.json (SPEC 7 and 13): which events prove earlier ones were missed. */
class GapVectorsTest {
    @TestFactory
    List<DynamicTest> everyCaseOfGapsJson() throws Exception {
        Path file = TestSupport.vectors().resolve("gaps.json");
        JsonObject root = JsonParser.parseString(Files.readString(file)).getAsJsonObject();
        JsonArray cases = root.getAsJsonArray("cases");
        assertFalse(cases.isEmpty(), "gaps.json has cases");
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonElement c : cases) {
            JsonObject kase = c.getAsJsonObject();
            tests.add(DynamicTest.dynamicTest(kase.get("name").getAsString(), () -> {
                GapTracker tracker = new GapTracker();
                JsonArray events = kase.getAsJsonArray("events");
                JsonArray expected = kase.getAsJsonArray("gaps");
                assertEquals(expected.size(), events.size(), "one expectation per event");
                List<Boolean> got = new ArrayList<>();
                List<Boolean> want = new ArrayList<>();
                for (int i = 0; i < events.size(); i++) {
                    JsonArray e = events.get(i).getAsJsonArray();
                    // [topic, seq, epoch] or [topic, seq, epoch, broker]: absent means "".
                    String broker = e.size() > 3 ? e.get(3).getAsString() : "";
                    got.add(tracker.observe(e.get(0).getAsString(), e.get(1).getAsLong(), e.get(2).getAsString(),
                            broker));
                    want.add(expected.get(i).getAsBoolean());
                }
                assertEquals(want, got);
            }));
        }
        return tests;
    }
}
