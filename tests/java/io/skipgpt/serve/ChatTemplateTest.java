package io.skipgpt.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.tokenizer.HfTokenizer;
import io.skipgpt.tokenizer.SentencePieceBpe;
import io.skipgpt.tokenizer.TokenizerJson;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A Hugging Face tokenizer's chat_template is used when the subset runs it; otherwise the fallback says why. */
class ChatTemplateTest {
    @TempDir
    Path dir;

    @Test
    void modelTemplateDrivesChatPrompts() throws Exception {
        HfTokenizer tokenizer = tokenizer(JinjaTest.INST);
        ChatTemplate template = ChatTemplates.of(tokenizer);
        assertTrue(template.describe().startsWith("the model's chat_template"), template.describe());
        LlamaConfig config = new LlamaConfig(32, 64, 2, 4, 2, tokenizer.vocabSize(), 512, 10000f, 1e-5f, false);
        try (LlamaWeights weights = RandomWeights.create(config, 5);
                TestServer s = new TestServer(config, weights, tokenizer, TestServer.settings(2, 256, 512, 64, 8, null), null)) {
            JsonObject model = JsonParser.parseString(s.request("GET", "/v1/models").body()).getAsJsonObject()
                    .getAsJsonArray("data").get(0).getAsJsonObject();
            assertEquals(template.describe(), model.get("chat_template").getAsString());
            HttpResponse<String> r = s.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"system\", \"content\": "
                    + "\"Be kind.\"}, {\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 2, \"temperature\": 0}");
            assertEquals(200, r.statusCode(), r.body());
            // The template writes <s> itself, which encodes to BOS: no second BOS in front.
            int[] ids = tokenizer.encode("<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nHi [/INST]");
            assertEquals(tokenizer.bos(), ids[0]);
            assertEquals(ids.length, JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonObject("usage")
                    .get("prompt_tokens").getAsInt());
            // The template's own refusal comes back as a 400 with its message.
            r = s.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, "
                    + "{\"role\": \"user\", \"content\": \"b\"}]}");
            BadInputTest.assertError(r, 400, "messages", null);
            assertTrue(r.body().contains("must alternate"), r.body());
        }
    }

    @Test
    void chatMlTemplateRendersWithItsTokensAsText() throws Exception {
        ChatTemplate template = ChatTemplates.of(tokenizer(JinjaTest.CHATML));
        assertEquals("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n",
                template.render(List.of(new ChatTemplate.Message("system", "S"), new ChatTemplate.Message("user", "U"))));
    }

    @Test
    void unsupportedTemplatesFallBackWithTheReason() throws Exception {
        assertFallback(tokenizer("{% macro turn(m) %}{{ m.content }}{% endmacro %}{% for m in messages %}"
                + "{{ turn(m) }}{% endfor %}"), "macro");
        assertFallback(tokenizer("{% for m in messages %}{{ m.content.zfill(3) }}{% endfor %}"), "zfill");
        assertFallback(tokenizer(null), "no usable chat_template");
        assertFallback(TestServer.TOKENIZER, "no tokenizer_config.json");
    }

    @Test
    void namedTemplateListPicksDefault() throws Exception {
        JsonArray list = new JsonArray();
        for (String[] t : new String[][] {{"tool_use", "{{ raise_exception('tools only') }}"}, {"default", JinjaTest.CHATML}}) {
            JsonObject o = new JsonObject();
            o.addProperty("name", t[0]);
            o.addProperty("template", t[1]);
            list.add(o);
        }
        ChatTemplate template = ChatTemplates.of(tokenizer(list));
        assertTrue(template.render(List.of(new ChatTemplate.Message("user", "U"))).startsWith("<|im_start|>system"));
    }

    private static void assertFallback(io.skipgpt.tokenizer.Tokenizer tokenizer, String reason) {
        ChatTemplate t = ChatTemplates.of(tokenizer);
        assertTrue(t.describe().startsWith("fallback (") && t.describe().contains(reason), t.describe());
        assertEquals("user: Hi\nassistant:", t.render(List.of(new ChatTemplate.Message("user", "Hi"))));
    }

    // A byte-fallback SentencePiece tokenizer written as tokenizer.json + tokenizer_config.json with this template.
    private HfTokenizer tokenizer(Object chatTemplate) throws Exception {
        String[] pieces = new String[3 + 256 + 2];
        pieces[0] = "<unk>";
        pieces[1] = "<s>";
        pieces[2] = "</s>";
        for (int b = 0; b < 256; b++) pieces[3 + b] = String.format("<0x%02X>", b);
        pieces[259] = "▁";
        pieces[260] = "a";
        SentencePieceBpe spm = new SentencePieceBpe(pieces, new float[pieces.length], 1, 2);
        Path d = Files.createTempDirectory(dir, "tok");
        TokenizerJson.write(d.resolve("tokenizer.json"), spm);
        TokenizerJson.writeConfig(d.resolve("tokenizer_config.json"), spm, 512);
        if (chatTemplate != null) {
            JsonObject config = JsonParser.parseString(Files.readString(d.resolve("tokenizer_config.json"))).getAsJsonObject();
            if (chatTemplate instanceof String s) config.addProperty("chat_template", s);
            else config.add("chat_template", (JsonArray) chatTemplate);
            Files.writeString(d.resolve("tokenizer_config.json"), config.toString());
        }
        HfTokenizer t = HfTokenizer.load(d);
        assertArrayEquals(new int[] {1}, t.encode("<s>"));
        return t;
    }
}
