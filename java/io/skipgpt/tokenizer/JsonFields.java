package io.skipgpt.tokenizer;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.util.regex.Pattern;

/**
 * Typed reads of tokenizer.json fields. A field of the wrong kind is an {@link IllegalArgumentException} naming
 * it, which the loader turns into a {@code ModelFormatException} naming the file.
 */
final class JsonFields {
    private JsonFields() {}

    static boolean absent(JsonElement e) {
        return e == null || e.isJsonNull();
    }

    static JsonObject object(JsonElement e, String what) {
        if (e == null || !e.isJsonObject()) throw new IllegalArgumentException(what + " is not a JSON object");
        return e.getAsJsonObject();
    }

    static JsonArray array(JsonObject o, String key) {
        JsonElement e = o.get(key);
        if (e == null || !e.isJsonArray()) throw new IllegalArgumentException("\"" + key + "\" is not an array");
        return e.getAsJsonArray();
    }

    static String string(JsonElement e, String what) {
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw new IllegalArgumentException(what + " is not a string");
        }
        return e.getAsString();
    }

    static String string(JsonObject o, String key) {
        return string(o.get(key), "\"" + key + "\"");
    }

    /** The string at {@code key}, or {@code fallback} when it is absent or null. */
    static String string(JsonObject o, String key, String fallback) {
        return absent(o.get(key)) ? fallback : string(o, key);
    }

    static boolean bool(JsonObject o, String key, boolean fallback) {
        JsonElement e = o.get(key);
        if (absent(e)) return fallback;
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
            throw new IllegalArgumentException("\"" + key + "\" is not a boolean");
        }
        return e.getAsBoolean();
    }

    static int integer(JsonElement e, String what) {
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
            throw new IllegalArgumentException(what + " is not a number");
        }
        JsonPrimitive p = e.getAsJsonPrimitive();
        double d = p.getAsDouble();
        if (d != Math.rint(d) || d < Integer.MIN_VALUE || d > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + " is not an int: " + p);
        }
        return (int) d;
    }

    static int integer(JsonObject o, String key, int fallback) {
        return absent(o.get(key)) ? fallback : integer(o.get(key), "\"" + key + "\"");
    }

    /** A splitter's or decoder's "pattern": {"String": literal} or {"Regex": expression}. */
    static Pattern pattern(JsonObject o) {
        JsonObject p = object(o.get("pattern"), "pattern");
        if (p.has("String")) return Pattern.compile(Pattern.quote(string(p, "String")));
        if (p.has("Regex")) return Pattern.compile(string(p, "Regex"), Pattern.UNICODE_CHARACTER_CLASS);
        throw new IllegalArgumentException("pattern is neither String nor Regex");
    }
}
