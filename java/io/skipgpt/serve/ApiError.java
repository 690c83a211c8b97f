package io.skipgpt.serve;

import com.google.gson.JsonNull;
import com.google.gson.JsonObject;

/**
 * A request the server refuses, answered as OpenAI does: HTTP status and
 * {@code {"error": {"message", "type", "param", "code"}}}.
 */
final class ApiError extends Exception {
    final int status;
    final String type;
    final String param;
    final String code;

    ApiError(int status, String type, String message, String param, String code) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400: something in the request is wrong; {@code param} names the field (may be null). */
    static ApiError invalid(String message, String param) {
        return new ApiError(400, "invalid_request_error", message, param, null);
    }

    JsonObject json() {
        JsonObject e = new JsonObject();
        e.addProperty("message", getMessage());
        e.addProperty("type", type);
        if (param == null) e.add("param", JsonNull.INSTANCE);
        else e.addProperty("param", param);
        if (code == null) e.add("code", JsonNull.INSTANCE);
        else e.addProperty("code", code);
        JsonObject o = new JsonObject();
        o.add("error", e);
        return o;
    }
}
