package io.skipgpt.infer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelLoader;
import io.skipgpt.testing.SharedData;
import io.skipgpt.tokenizer.Tokenizer;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Streamed text equals the continuation decoded after the whole prompt, for every split of a text into prompt and
 * generated tokens: leading spaces, and characters the small vocabulary spells as several byte tokens (each piece
 * released only once its character is complete).
 */
class StreamDecoderTest {
    @Test
    void piecesMakeTheContinuationAtEverySplit() throws Exception {
        Tokenizer tok;
        try (LoadedModel m = ModelLoader.load(SharedData.require("models/stories260K/stories260K.gguf"), null)) {
            tok = m.tokenizer();
        }
        String text = "Once upon a time, Lily saw a café and a 日本 dog. \"Hi!\" she said.";
        int[] all = tok.encodeWithBos(text);
        int splits = 0;
        for (int k = 1; k < all.length; k++) {
            String promptText = tok.decode(Arrays.copyOf(all, k));
            if (promptText.endsWith("\uFFFD")) continue; // a prompt that ends inside a character
            String expected = tok.decode(all).substring(promptText.length());
            StreamDecoder d = new StreamDecoder(tok, Arrays.copyOf(all, k));
            StringBuilder streamed = new StringBuilder();
            for (int i = k; i < all.length; i++) {
                String piece = d.append(all[i]);
                assertTrue(!piece.contains("\uFFFD"), "a piece with half a character at split " + k + ": " + piece);
                streamed.append(piece);
            }
            assertEquals(expected, streamed.toString(), "split " + k);
            assertEquals(expected, d.text(), "split " + k);
            splits++;
        }
        assertTrue(splits > 20, "splits tried: " + splits);
    }
}
