// SPDX-License-Identifier: MIT
package io.zeromesh;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;

/** Strict reading of the JSON envelopes of Redis queues (SPEC.md 16.2). */
final class Envelopes {
    private Envelopes() {}

    /** Why an envelope is malformed (SPEC.md 16.2), or null. Unknown fields are ignored. */
    static String problem(JsonObject env) {
        boolean body = present(env, "body");
        boolean b64 = present(env, "body_b64");
        if (body == b64) {
            return "needs exactly one of body and body_b64";
        }
        if (!isString(env.get(body ? "body" : "body_b64"))) {
            return (body ? "body" : "body_b64") + " is not a string";
        }
        if (present(env, "id") && !(isString(env.get("id")) && Schema.isName(env.get("id").getAsString()))) {
            return "id is not a string of 1..255 bytes";
        }
        if (present(env, "headers") && !env.get("headers").isJsonObject()) {
            return "headers is not an object";
        }
        for (String field : new String[] {"trace", "error", "queue"}) {
            if (present(env, field) && !isString(env.get(field))) {
                return field + " is not a string";
            }
        }
        if (present(env, "attempt")) {
            JsonElement a = env.get("attempt");
            if (!a.isJsonPrimitive() || !a.getAsJsonPrimitive().isNumber()
                    || !a.getAsString().matches("[0-9]+")) {
                return "attempt is not a non-negative integer";
            }
        }
        return null;
    }

    /** One JSON value, strictly (no single quotes, comments or bare words), and nothing after it. */
    static JsonElement strictJson(String text) {
        try (JsonReader reader = new JsonReader(new StringReader(text))) {
            reader.setStrictness(Strictness.STRICT);
            JsonElement value = JsonParser.parseReader(reader);
            if (reader.peek() != JsonToken.END_DOCUMENT) {
                throw new JsonParseException("data after the JSON value");
            }
            return value;
        } catch (IOException e) {
            throw new JsonParseException(e);
        }
    }

    static boolean present(JsonObject env, String field) {
        return env.has(field) && !env.get(field).isJsonNull();
    }

    static boolean isString(JsonElement e) {
        return e.isJsonPrimitive() && ((JsonPrimitive) e).isString();
    }
}
