package io.skipgpt.serve;

import io.skipgpt.tokenizer.HfTokenizer;
import io.skipgpt.tokenizer.Tokenizer;

/** Picks the chat template of a model: its own from tokenizer_config.json when usable, else the fallback. */
final class ChatTemplates {
    private ChatTemplates() {}

    static ChatTemplate of(Tokenizer tokenizer) {
        if (!(tokenizer instanceof HfTokenizer hf) || hf.tokenizerConfigJson() == null) {
            return ChatTemplate.fallback("the model has no tokenizer_config.json");
        }
        return ChatTemplate.fallback("the model's chat_template is not interpreted");
    }
}
