package io.skipgpt.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.net.http.HttpResponse;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every bad request gets OpenAI's error JSON with the right 4xx status, and the server keeps serving. */
class BadInputTest {
    static TestServer server;

    @BeforeAll
    static void start() throws Exception {
        server = new TestServer(TestServer.settings(2, 64, 128, 64, 8, null), null);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static final String C = "/v1/completions", CHAT = "/v1/chat/completions";

    static Stream<Arguments> badRequests() {
        String longPrompt = "x".repeat(80);
        return Stream.of(
                // path, body, status, param, code
                Arguments.of(C, "{\"prompt\": \"hi\",", 400, null, null),
                Arguments.of(C, "{prompt: 'hi'}", 400, null, null),
                Arguments.of(C, "{\"prompt\": \"hi\"} trailing", 400, null, null),
                Arguments.of(C, "[1, 2]", 400, null, null),
                Arguments.of(C, "", 400, null, null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"foo\": 1}", 400, "foo", null),
                Arguments.of(C, "{\"model\": \"gpt-4\", \"prompt\": \"hi\"}", 404, "model", "model_not_found"),
                Arguments.of(C, "{\"model\": 7, \"prompt\": \"hi\"}", 400, "model", null),
                Arguments.of(C, "{}", 400, "prompt", null),
                Arguments.of(C, "{\"prompt\": \"\"}", 400, "prompt", null),
                Arguments.of(C, "{\"prompt\": 5}", 400, "prompt", null),
                Arguments.of(C, "{\"prompt\": [\"a\", \"b\"]}", 400, "prompt", null),
                Arguments.of(C, "{\"prompt\": \"" + longPrompt + "\"}", 400, "prompt", "context_length_exceeded"),
                Arguments.of(C, "{\"prompt\": \"hi\", \"max_tokens\": 100}", 400, "max_tokens", "context_length_exceeded"),
                Arguments.of(C, "{\"prompt\": \"hi\", \"max_tokens\": 0}", 400, "max_tokens", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"max_tokens\": 1.5}", 400, "max_tokens", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"max_tokens\": 1e30}", 400, "max_tokens", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"temperature\": -0.5}", 400, "temperature", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"temperature\": 2.5}", 400, "temperature", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"temperature\": \"hot\"}", 400, "temperature", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"top_p\": 0}", 400, "top_p", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"top_p\": 1.5}", 400, "top_p", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"n\": 2}", 400, "n", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", 400, "stop", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"stop\": [\"\"]}", 400, "stop", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"stop\": 3}", 400, "stop", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"seed\": \"x\"}", 400, "seed", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"stream\": \"yes\"}", 400, "stream", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"stream_options\": {\"include_usage\": true}}", 400,
                        "stream_options", null),
                Arguments.of(C, "{\"prompt\": \"hi\", \"stream\": true, \"stream_options\": {\"x\": 1}}", 400,
                        "stream_options.x", null),
                Arguments.of(C, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", 400, "messages", null),
                Arguments.of(CHAT, "{}", 400, "messages", null),
                Arguments.of(CHAT, "{\"messages\": []}", 400, "messages", null),
                Arguments.of(CHAT, "{\"messages\": [\"hi\"]}", 400, "messages[0]", null),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}", 400,
                        "messages[0].role", null),
                Arguments.of(CHAT, "{\"messages\": [{\"content\": \"hi\"}]}", 400, "messages[0].role", null),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"user\"}]}", 400, "messages[0].content", null),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", 400,
                        "messages[0].content", null),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\", \"x\": 1}]}", 400,
                        "messages[0].x", null),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}",
                        400, "messages[0].content[0].type", null),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"" + longPrompt + "\"}]}", 400,
                        "messages", "context_length_exceeded"),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 3, "
                        + "\"max_completion_tokens\": 3}", 400, "max_completion_tokens", null),
                Arguments.of(CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"prompt\": \"x\"}", 400,
                        "prompt", null));
    }

    @ParameterizedTest(name = "[{index}] {0} {1}")
    @MethodSource("badRequests")
    void badRequestIsAnsweredWithAnError(String path, String body, int status, String param, String code)
            throws Exception {
        HttpResponse<String> r = server.post(path, body, "Content-Type", "application/json");
        assertError(r, status, param, code);
        assertServing();
    }

    @Test
    void wrongMethodsAndUrls() throws Exception {
        HttpResponse<String> r = server.request("GET", C);
        assertError(r, 405, null, "method_not_allowed");
        assertEquals("POST", r.headers().firstValue("Allow").orElse(""));
        assertError(server.request("DELETE", "/v1/models"), 405, null, "method_not_allowed");
        assertError(server.request("POST", "/health"), 405, null, "method_not_allowed");
        assertError(server.request("GET", "/v2/models"), 404, null, "unknown_url");
        assertError(server.request("GET", "/v1/engines"), 404, null, "unknown_url");
        assertError(server.request("GET", "/v1/models/gpt-4"), 404, "model", "model_not_found");
        assertEquals(200, server.request("GET", "/v1/models/tiny").statusCode());
        assertServing();
    }

    @Test
    void oversizedBodyIsRefused() throws Exception {
        String body = "{\"prompt\": \"" + "x".repeat(OpenAiServer.MAX_BODY_BYTES) + "\"}";
        assertError(server.post(C, body), 413, null, "request_too_large");
        assertServing();
    }

    static void assertError(HttpResponse<String> r, int status, String param, String code) {
        assertEquals(status, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
        JsonObject o = JsonParser.parseString(r.body()).getAsJsonObject();
        assertEquals(1, o.size(), r.body());
        JsonObject e = o.getAsJsonObject("error");
        assertEquals(4, e.size(), r.body());
        assertTrue(!e.get("message").getAsString().isBlank(), r.body());
        assertEquals("invalid_request_error", e.get("type").getAsString(), r.body());
        assertEquals(param, string(e.get("param")), r.body());
        assertEquals(code, string(e.get("code")), r.body());
    }

    private static String string(JsonElement e) {
        return e.isJsonNull() ? null : e.getAsString();
    }

    private static void assertServing() throws Exception {
        HttpResponse<String> ok = server.post(C, "{\"prompt\": \"hi\", \"max_tokens\": 2, \"temperature\": 0}");
        assertEquals(200, ok.statusCode(), ok.body());
        JsonObject h = server.awaitIdle();
        assertEquals(h.get("caches").getAsInt(), h.get("free_caches").getAsInt());
    }
}
