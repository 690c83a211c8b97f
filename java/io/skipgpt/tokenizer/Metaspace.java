package io.skipgpt.tokenizer;

import com.google.gson.JsonObject;
import java.util.List;

/**
 * The settings of a tokenizer.json Metaspace step, which the pre-tokenizer and the decoder read alike: spaces
 * become {@code replacement} (one character), which is prepended "always", only at the start of the input
 * ("first") or "never"; with {@code split}, each replacement starts a new word (the pre-tokenizer's concern).
 */
record Metaspace(String replacement, String prependScheme, boolean split) {
    static Metaspace of(JsonObject o) {
        String replacement = JsonFields.string(o, "replacement", "\u2581");
        if (replacement.codePointCount(0, replacement.length()) != 1) {
            throw new IllegalArgumentException("Metaspace replacement \"" + replacement + "\" is not one character");
        }
        // add_prefix_space is the older files' spelling of always / never
        String scheme = JsonFields.string(o, "prepend_scheme",
                JsonFields.bool(o, "add_prefix_space", true) ? "always" : "never");
        if (!List.of("always", "first", "never").contains(scheme)) {
            throw new IllegalArgumentException("Metaspace prepend_scheme " + scheme + " is not supported");
        }
        return new Metaspace(replacement, scheme, JsonFields.bool(o, "split", true));
    }
}
