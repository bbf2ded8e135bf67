// SPDX-License-Identifier: MIT
package io.zeromesh;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Decoded msgpack values to JSON and back, in the mapping of protocol/vectors/README.md:
 * bin is {@code {"$bin": hex}}, ext is {@code {"$ext": [type, hex]}}, everything else is plain JSON.
 */
final class JsonValues {
    private JsonValues() {}

    private static final HexFormat HEX = HexFormat.of();

    static JsonElement toJson(Object value) {
        if (value == null) {
            return JsonNull.INSTANCE;
        } else if (value instanceof String s) {
            return new JsonPrimitive(s);
        } else if (value instanceof Boolean b) {
            return new JsonPrimitive(b);
        } else if (value instanceof Float f) {
            // float32 widened exactly, as msgpack-python and JSON readers see it
            return new JsonPrimitive((double) f);
        } else if (value instanceof Number n) {
            return new JsonPrimitive(n);
        } else if (value instanceof byte[] b) {
            JsonObject o = new JsonObject();
            o.addProperty("$bin", HEX.formatHex(b));
            return o;
        } else if (value instanceof Ext e) {
            JsonArray pair = new JsonArray();
            pair.add(e.type());
            pair.add(HEX.formatHex(e.data()));
            JsonObject o = new JsonObject();
            o.add("$ext", pair);
            return o;
        } else if (value instanceof Map<?, ?> map) {
            JsonObject o = new JsonObject();
            for (Map.Entry<?, ?> e : map.entrySet()) {
                o.add((String) e.getKey(), toJson(e.getValue()));
            }
            return o;
        } else if (value instanceof List<?> list) {
            JsonArray a = new JsonArray();
            for (Object item : list) {
                a.add(toJson(item));
            }
            return a;
        }
        throw new IllegalArgumentException("no JSON form for " + value.getClass().getName());
    }

    /** The inverse of {@link #toJson}: integral numbers become Long (BigInteger past its range), others Double. */
    static Object fromJson(JsonElement json) {
        if (json == null || json.isJsonNull()) {
            return null;
        }
        if (json.isJsonPrimitive()) {
            JsonPrimitive p = json.getAsJsonPrimitive();
            if (p.isBoolean()) {
                return p.getAsBoolean();
            }
            if (p.isString()) {
                return p.getAsString();
            }
            String text = p.getAsString();
            if (text.contains(".") || text.contains("e") || text.contains("E")) {
                return p.getAsDouble();
            }
            BigInteger big = new BigInteger(text);
            return big.bitLength() < 64 ? (Object) big.longValue() : big;
        }
        if (json.isJsonArray()) {
            List<Object> list = new ArrayList<>();
            for (JsonElement item : json.getAsJsonArray()) {
                list.add(fromJson(item));
            }
            return list;
        }
        JsonObject o = json.getAsJsonObject();
        if (o.size() == 1 && o.has("$bin")) {
            return HEX.parseHex(o.get("$bin").getAsString());
        }
        if (o.size() == 1 && o.has("$ext")) {
            JsonArray pair = o.getAsJsonArray("$ext");
            return new Ext(pair.get(0).getAsInt(), HEX.parseHex(pair.get(1).getAsString()));
        }
        Map<String, Object> map = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : o.entrySet()) {
            map.put(e.getKey(), fromJson(e.getValue()));
        }
        return map;
    }

    /** JSON value equality: object key order does not matter, numbers compare by value. */
    static boolean same(JsonElement a, JsonElement b) {
        if (a.isJsonPrimitive() && b.isJsonPrimitive()) {
            JsonPrimitive x = a.getAsJsonPrimitive();
            JsonPrimitive y = b.getAsJsonPrimitive();
            if (x.isNumber() && y.isNumber()) {
                return new BigDecimal(x.getAsString()).compareTo(new BigDecimal(y.getAsString())) == 0;
            }
            return x.equals(y);
        }
        if (a.isJsonArray() && b.isJsonArray()) {
            JsonArray x = a.getAsJsonArray();
            JsonArray y = b.getAsJsonArray();
            if (x.size() != y.size()) {
                return false;
            }
            for (int i = 0; i < x.size(); i++) {
                if (!same(x.get(i), y.get(i))) {
                    return false;
                }
            }
            return true;
        }
        if (a.isJsonObject() && b.isJsonObject()) {
            JsonObject x = a.getAsJsonObject();
            JsonObject y = b.getAsJsonObject();
            if (!x.keySet().equals(y.keySet())) {
                return false;
            }
            for (String key : x.keySet()) {
                if (!same(x.get(key), y.get(key))) {
                    return false;
                }
            }
            return true;
        }
        return a.isJsonNull() && b.isJsonNull();
    }
}
