package io.skipgpt.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The shapes OpenAI clients parse: whole answers, server-sent events, models, health; stop strings. */
class ResponseFormatTest {
    static TestServer server;

    @BeforeAll
    static void start() throws Exception {
        server = new TestServer(TestServer.settings(4, 256, 1024, 64, 8, null), null);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    @Test
    void completionAnswer() throws Exception {
        JsonObject o = json(server.post("/v1/completions", "{\"model\": \"tiny\", \"prompt\": \"abc\", \"max_tokens\": 5, "
                + "\"temperature\": 0, \"user\": \"u1\", \"n\": 1, \"seed\": null}"));
        assertTrue(o.get("id").getAsString().startsWith("cmpl-"), o.toString());
        assertEquals("text_completion", o.get("object").getAsString());
        assertEquals("tiny", o.get("model").getAsString());
        assertTrue(o.get("created").getAsLong() > 1_600_000_000L);
        JsonObject choice = o.getAsJsonArray("choices").get(0).getAsJsonObject();
        assertEquals(0, choice.get("index").getAsInt());
        assertTrue(choice.get("logprobs").isJsonNull());
        assertTrue(choice.has("text"));
        JsonObject usage = o.getAsJsonObject("usage");
        assertEquals(4, usage.get("prompt_tokens").getAsInt(), "BOS + one token per character");
        int completion = usage.get("completion_tokens").getAsInt();
        assertEquals(usage.get("total_tokens").getAsInt(), 4 + completion);
        assertEquals(completion == 5 ? "length" : "stop", choice.get("finish_reason").getAsString());
    }

    @Test
    void chatAnswerUsesTheFallbackTemplate() throws Exception {
        JsonObject o = json(server.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"system\", \"content\": "
                + "\"Be brief.\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}]}], "
                + "\"max_completion_tokens\": 4, \"temperature\": 0}"));
        assertTrue(o.get("id").getAsString().startsWith("chatcmpl-"));
        assertEquals("chat.completion", o.get("object").getAsString());
        JsonObject message = o.getAsJsonArray("choices").get(0).getAsJsonObject().getAsJsonObject("message");
        assertEquals("assistant", message.get("role").getAsString());
        assertTrue(message.has("content"));
        String prompt = "system: Be brief.\nuser: Hi\nassistant:";
        assertEquals(1 + prompt.length(), o.getAsJsonObject("usage").get("prompt_tokens").getAsInt());
    }

    @Test
    void completionStream() throws Exception {
        String request = "{\"prompt\": \"Once\", \"max_tokens\": 12, \"temperature\": 0";
        String whole = text(json(server.post("/v1/completions", request + "}")));
        HttpResponse<String> r = server.post("/v1/completions", request + ", \"stream\": true}");
        List<JsonObject> events = events(r);
        StringBuilder streamed = new StringBuilder();
        for (int i = 0; i < events.size(); i++) {
            JsonObject e = events.get(i);
            assertEquals("text_completion", e.get("object").getAsString());
            assertEquals(events.get(0).get("id").getAsString(), e.get("id").getAsString());
            assertEquals("tiny", e.get("model").getAsString());
            assertFalse(e.has("usage"), "no usage without stream_options.include_usage");
            JsonObject choice = e.getAsJsonArray("choices").get(0).getAsJsonObject();
            streamed.append(choice.get("text").getAsString());
            assertEquals(i == events.size() - 1, !choice.get("finish_reason").isJsonNull(), "finish_reason only last");
        }
        assertEquals(whole, streamed.toString());
    }

    @Test
    void chatStreamWithUsage() throws Exception {
        String request = "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell\"}], \"max_tokens\": 9, "
                + "\"temperature\": 0";
        JsonObject answer = json(server.post("/v1/chat/completions", request + "}"));
        HttpResponse<String> r = server.post("/v1/chat/completions", request
                + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}}");
        List<JsonObject> events = events(r);
        JsonObject first = events.get(0).getAsJsonArray("choices").get(0).getAsJsonObject();
        assertEquals("assistant", first.getAsJsonObject("delta").get("role").getAsString());
        StringBuilder streamed = new StringBuilder();
        for (JsonObject e : events.subList(0, events.size() - 1)) {
            assertEquals("chat.completion.chunk", e.get("object").getAsString());
            JsonObject delta = e.getAsJsonArray("choices").get(0).getAsJsonObject().getAsJsonObject("delta");
            if (delta.has("content")) streamed.append(delta.get("content").getAsString());
        }
        JsonObject last = events.get(events.size() - 2).getAsJsonArray("choices").get(0).getAsJsonObject();
        assertEquals(answer.getAsJsonArray("choices").get(0).getAsJsonObject().get("finish_reason").getAsString(),
                last.get("finish_reason").getAsString());
        JsonObject usageChunk = events.get(events.size() - 1);
        assertEquals(0, usageChunk.getAsJsonArray("choices").size());
        assertEquals(answer.getAsJsonObject("usage"), usageChunk.getAsJsonObject("usage"));
        assertEquals(text(answer), streamed.toString());
    }

    @Test
    void stopStringsEndTheTextBeforeThem() throws Exception {
        String base = "{\"prompt\": \"stop here\", \"max_tokens\": 40, \"temperature\": 0";
        JsonObject full = json(server.post("/v1/completions", base + "}"));
        String text = text(full);
        assertTrue(text.length() >= 12, "the greedy text should be long enough to cut: " + text.length());
        // A two-character stop string from the middle, and one that never occurs.
        String stop = text.substring(8, 10);
        String expected = text.substring(0, text.indexOf(stop));
        String stops = ", \"stop\": [" + quote("\u0001never\u0002") + ", " + quote(stop) + "]";
        JsonObject cut = json(server.post("/v1/completions", base + stops + "}"));
        assertEquals(expected, text(cut));
        assertEquals("stop", cut.getAsJsonArray("choices").get(0).getAsJsonObject().get("finish_reason").getAsString());
        StringBuilder streamed = new StringBuilder();
        for (JsonObject e : events(server.post("/v1/completions", base + stops + ", \"stream\": true}"))) {
            streamed.append(e.getAsJsonArray("choices").get(0).getAsJsonObject().get("text").getAsString());
        }
        assertEquals(expected, streamed.toString(), "held-back text is never sent when a stop string follows");
        assertTrue(cut.getAsJsonObject("usage").get("completion_tokens").getAsInt()
                < full.getAsJsonObject("usage").get("completion_tokens").getAsInt());
    }

    @Test
    void modelsAndHealth() throws Exception {
        JsonObject list = json(server.request("GET", "/v1/models"));
        assertEquals("list", list.get("object").getAsString());
        JsonObject m = list.getAsJsonArray("data").get(0).getAsJsonObject();
        assertEquals("tiny", m.get("id").getAsString());
        assertEquals("model", m.get("object").getAsString());
        assertEquals("skipgpt", m.get("owned_by").getAsString());
        assertEquals(256, m.get("max_request_tokens").getAsInt());
        assertTrue(m.get("chat_template").getAsString().startsWith("fallback"), m.toString());
        JsonObject h = json(server.request("GET", "/health"));
        assertEquals("ok", h.get("status").getAsString());
        assertEquals(4, h.get("caches").getAsInt());
        assertTrue(h.get("process_cpu_seconds").getAsDouble() > 0, h.toString());
    }

    private static String quote(String s) {
        JsonObject o = new JsonObject();
        o.addProperty("s", s);
        String json = o.toString();
        return json.substring(5, json.length() - 1);
    }

    private static JsonObject json(HttpResponse<String> r) {
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
        return JsonParser.parseString(r.body()).getAsJsonObject();
    }

    private static String text(JsonObject answer) {
        JsonObject choice = answer.getAsJsonArray("choices").get(0).getAsJsonObject();
        return choice.has("message") ? choice.getAsJsonObject("message").get("content").getAsString()
                : choice.get("text").getAsString();
    }

    /** The JSON events of an SSE body, checking the framing: "data: " lines, blank-line separated, [DONE] last. */
    static List<JsonObject> events(HttpResponse<String> r) {
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("text/event-stream; charset=utf-8", r.headers().firstValue("Content-Type").orElse(""));
        String body = r.body();
        assertTrue(body.endsWith("data: [DONE]\n\n"), body);
        List<JsonObject> events = new ArrayList<>();
        for (String block : body.substring(0, body.length() - "data: [DONE]\n\n".length()).split("\n\n")) {
            if (block.startsWith(":")) continue; // keep-alive comment
            assertTrue(block.startsWith("data: ") && !block.contains("\n"), "one data line per event: " + block);
            events.add(JsonParser.parseString(block.substring(6)).getAsJsonObject());
        }
        assertFalse(events.isEmpty());
        return events;
    }
}
