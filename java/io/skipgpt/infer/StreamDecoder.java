package io.skipgpt.infer;

import io.skipgpt.tokenizer.Tokenizer;
import java.util.Arrays;

/**
 * Turns a growing token sequence into text increments. Byte-fallback tokens can split a character across
 * tokens, so each step decodes the whole continuation and releases only text that no longer ends in an
 * incomplete character (U+FFFD). It decodes after the prompt's last token, the context that keeps SentencePiece's
 * leading-space rule right, not after the whole prompt: a long prompt would be decoded again for every token.
 */
public final class StreamDecoder {
    private final Tokenizer tokenizer;
    private final int prefixLength;
    private int[] tokens;
    private int length;
    private final String prefixText;
    private int emitted;

    public StreamDecoder(Tokenizer tokenizer, int[] prompt) {
        this.tokenizer = tokenizer;
        int[] context = Arrays.copyOfRange(prompt, Math.max(0, prompt.length - 1), prompt.length);
        this.tokens = Arrays.copyOf(context, context.length + 16);
        this.length = context.length;
        this.prefixLength = context.length;
        this.prefixText = tokenizer.decode(context);
    }

    /** Adds a token and returns the newly complete text (possibly empty). */
    public String append(int token) {
        if (length == tokens.length) tokens = Arrays.copyOf(tokens, 2 * length);
        tokens[length++] = token;
        String all = continuation();
        int end = all.length();
        while (end > emitted && all.charAt(end - 1) == '\uFFFD') end--;
        if (end <= emitted) return "";
        String piece = all.substring(emitted, end);
        emitted = end;
        return piece;
    }

    /** All text after the prompt. */
    public String text() {
        return continuation();
    }

    private String continuation() {
        String all = tokenizer.decode(Arrays.copyOf(tokens, length));
        return all.startsWith(prefixText) ? all.substring(prefixText.length())
                : tokenizer.decode(Arrays.copyOfRange(tokens, prefixLength, length));
    }
}
