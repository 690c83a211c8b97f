package io.skipgpt.serve;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Typed, range-checked access to the fields of a JSON request object. Every field must be one the endpoint
 * knows; a JSON null counts as absent (clients send null for "default").
 */
final class RequestFields {
    private final JsonObject object;
    private final String prefix; // "messages[2]." for a nested object, "" at the top

    RequestFields(JsonObject object, Set<String> known, String prefix) throws ApiError {
        this.object = object;
        this.prefix = prefix;
        for (String name : object.keySet()) {
            if (!known.contains(name)) {
                throw ApiError.invalid("Unrecognized request argument supplied: " + prefix + name, prefix + name);
            }
        }
    }

    boolean has(String name) {
        JsonElement e = object.get(name);
        return e != null && !e.isJsonNull();
    }

    JsonElement get(String name) {
        return has(name) ? object.get(name) : null;
    }

    String string(String name, String otherwise) throws ApiError {
        if (!has(name)) return otherwise;
        JsonElement e = object.get(name);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) throw wrongType(name, "a string");
        return e.getAsString();
    }

    boolean bool(String name, boolean otherwise) throws ApiError {
        if (!has(name)) return otherwise;
        JsonElement e = object.get(name);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) throw wrongType(name, "a boolean");
        return e.getAsBoolean();
    }

    /** A number in [min, max] (or (min, max] when {@code minExclusive}). */
    double number(String name, double otherwise, double min, boolean minExclusive, double max) throws ApiError {
        if (!has(name)) return otherwise;
        double v = primitiveNumber(name).doubleValue();
        if (v < min || (minExclusive && v == min) || v > max) {
            throw ApiError.invalid(prefix + name + " must be in " + (minExclusive ? "(" : "[") + fmt(min) + ", "
                    + fmt(max) + "], got " + fmt(v), prefix + name);
        }
        return v;
    }

    /** An integer in [min, max]; null when absent. */
    Long integer(String name, long min, long max) throws ApiError {
        if (!has(name)) return null;
        BigDecimal v = new BigDecimal(primitiveNumber(name).toString());
        if (v.stripTrailingZeros().scale() > 0) throw wrongType(name, "an integer");
        if (v.compareTo(BigDecimal.valueOf(min)) < 0 || v.compareTo(BigDecimal.valueOf(max)) > 0) {
            throw ApiError.invalid(prefix + name + " must be in [" + min + ", " + max + "], got " + v.toPlainString(),
                    prefix + name);
        }
        return v.longValueExact();
    }

    /** A string, or an array of up to {@code most} strings; none may be empty. */
    List<String> strings(String name, int most) throws ApiError {
        List<String> out = new ArrayList<>();
        if (!has(name)) return out;
        JsonElement e = object.get(name);
        if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isString()) {
            out.add(e.getAsString());
        } else if (e.isJsonArray()) {
            for (JsonElement item : e.getAsJsonArray()) {
                if (!item.isJsonPrimitive() || !item.getAsJsonPrimitive().isString()) {
                    throw wrongType(name, "a string or an array of strings");
                }
                out.add(item.getAsString());
            }
        } else {
            throw wrongType(name, "a string or an array of strings");
        }
        if (out.size() > most) throw ApiError.invalid(prefix + name + " takes at most " + most + " strings", prefix + name);
        if (out.stream().anyMatch(String::isEmpty)) throw ApiError.invalid(prefix + name + " contains an empty string", prefix + name);
        return out;
    }

    JsonArray array(String name) throws ApiError {
        JsonElement e = get(name);
        if (e == null) throw ApiError.invalid("Missing required parameter: " + prefix + name, prefix + name);
        if (!e.isJsonArray()) throw wrongType(name, "an array");
        return e.getAsJsonArray();
    }

    JsonObject object(String name) throws ApiError {
        JsonElement e = get(name);
        if (e == null) return null;
        if (!e.isJsonObject()) throw wrongType(name, "an object");
        return e.getAsJsonObject();
    }

    private Number primitiveNumber(String name) throws ApiError {
        JsonElement e = object.get(name);
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) throw wrongType(name, "a number");
        JsonPrimitive p = e.getAsJsonPrimitive();
        return p.getAsNumber();
    }

    private ApiError wrongType(String name, String what) {
        return ApiError.invalid(prefix + name + " must be " + what, prefix + name);
    }

    private static String fmt(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
    }
}
