package io.skipgpt.serve;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.tokenizer.HfTokenizer;
import io.skipgpt.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Picks the chat template of a model: the {@code chat_template} of its tokenizer_config.json when the built-in
 * {@link Jinja} subset can parse it and render sample conversations with it, else the fallback, with the reason.
 */
final class ChatTemplates {
    private ChatTemplates() {}

    private static final List<List<ChatTemplate.Message>> SAMPLES = List.of(
            List.of(new ChatTemplate.Message("system", "S"), new ChatTemplate.Message("user", "U"),
                    new ChatTemplate.Message("assistant", "A"), new ChatTemplate.Message("user", "V")),
            List.of(new ChatTemplate.Message("user", "U"), new ChatTemplate.Message("assistant", "A"),
                    new ChatTemplate.Message("user", "V")),
            List.of(new ChatTemplate.Message("user", "U")));

    static ChatTemplate of(Tokenizer tokenizer) {
        if (!(tokenizer instanceof HfTokenizer hf) || hf.tokenizerConfigJson() == null) {
            return ChatTemplate.fallback("the model has no tokenizer_config.json");
        }
        JsonObject config = JsonParser.parseString(hf.tokenizerConfigJson()).getAsJsonObject();
        String source = source(config.get("chat_template"));
        if (source == null) return ChatTemplate.fallback("tokenizer_config.json has no usable chat_template");
        Jinja jinja;
        try {
            jinja = Jinja.parse(source);
        } catch (Jinja.TemplateException e) {
            return ChatTemplate.fallback("the model's chat_template is beyond the built-in Jinja subset: "
                    + e.getMessage());
        }
        ChatTemplate template = new JinjaTemplate(jinja, special(config, "bos_token", hf, hf.bos()),
                special(config, "eos_token", hf, hf.eos()));
        // A construct the subset lacks may only show when rendering; a template may refuse some conversations
        // (raise_exception, e.g. "roles must alternate") but must accept one of the samples.
        String failure = null;
        for (List<ChatTemplate.Message> sample : SAMPLES) {
            try {
                template.render(sample);
                return template;
            } catch (Jinja.TemplateException e) {
                if (failure == null) failure = e.getMessage();
            }
        }
        return ChatTemplate.fallback("the model's chat_template failed on sample conversations: " + failure);
    }

    // A template string, or the one named "default" in a list of {name, template} (else the first).
    private static String source(JsonElement e) {
        if (e == null || e.isJsonNull()) return null;
        if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isString()) return e.getAsString();
        if (!e.isJsonArray() || e.getAsJsonArray().isEmpty()) return null;
        String first = null;
        for (JsonElement item : e.getAsJsonArray()) {
            if (!item.isJsonObject() || !item.getAsJsonObject().has("template")) continue;
            String t = item.getAsJsonObject().get("template").getAsString();
            if (first == null) first = t;
            JsonElement name = item.getAsJsonObject().get("name");
            if (name != null && "default".equals(name.getAsString())) return t;
        }
        return first;
    }

    private static String special(JsonObject config, String key, HfTokenizer hf, int id) {
        JsonElement e = config.get(key);
        if (e != null && e.isJsonPrimitive()) return e.getAsString();
        if (e != null && e.isJsonObject() && e.getAsJsonObject().has("content")) {
            return e.getAsJsonObject().get("content").getAsString();
        }
        return hf.token(id);
    }

    /** A model's own template, rendered as transformers' apply_chat_template(add_generation_prompt=True). */
    private record JinjaTemplate(Jinja jinja, String bosToken, String eosToken) implements ChatTemplate {
        @Override
        public String render(List<Message> messages) {
            List<Object> list = new ArrayList<>();
            for (Message m : messages) {
                Map<String, Object> message = new LinkedHashMap<>();
                message.put("role", m.role());
                message.put("content", m.content());
                list.add(message);
            }
            Map<String, Object> vars = new LinkedHashMap<>();
            vars.put("messages", list);
            vars.put("bos_token", bosToken);
            vars.put("eos_token", eosToken);
            vars.put("add_generation_prompt", true);
            return jinja.render(vars);
        }

        @Override
        public String describe() {
            return "the model's chat_template (tokenizer_config.json), rendered by the built-in Jinja subset";
        }
    }
}
