package io.skipgpt.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.tensor.Tensor;
import io.skipgpt.tokenizer.SentencePieceBpe;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Small random models for format tests, and weight comparison. */
final class TestModels {
    private TestModels() {}

    /** dim 48, hidden 80, 3 layers, 6 heads of 8, 2 KV heads (GQA), vocab 300, context 64. */
    static LlamaConfig config(boolean tied) {
        return new LlamaConfig(48, 80, 3, 6, 2, 300, 64, 10000f, 1e-5f, tied);
    }

    /** A SentencePiece vocabulary of {@code size}: controls, 256 byte tokens, letters and a few merges. */
    static SentencePieceBpe tokenizer(int size) {
        List<String> pieces = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        for (int b = 0; b < 256; b++) pieces.add(String.format("<0x%02X>", b));
        String letters = "▁abcdefghijklmnopqrstuvwxyz";
        for (int i = 0; pieces.size() < size && i < letters.length(); i++) pieces.add(letters.substring(i, i + 1));
        for (int i = 0; pieces.size() < size; i++) pieces.add("▁" + letters.charAt(1 + i % 26) + letters.charAt(1 + i / 26 % 26));
        float[] scores = new float[size];
        for (int i = 259; i < size; i++) scores[i] = -(i - 259);
        return new SentencePieceBpe(pieces.toArray(String[]::new), scores, 1, 2);
    }

    /** A model with every weight drawn uniformly from [-1, 1) (fresh values, never zeros). */
    static LoadedModel random(LlamaConfig c, long seed) {
        LlamaWeights w = LlamaWeights.allocate(c);
        Random rnd = new Random(seed);
        for (WeightSlot slot : WeightSlot.values()) {
            if (slot == WeightSlot.OUTPUT && c.tiedEmbeddings()) continue;
            for (int layer = 0; layer < (slot.perLayer ? c.nLayers() : 1); layer++) {
                Tensor t = slot.of(w, layer);
                float[] v = new float[(int) t.size()];
                for (int i = 0; i < v.length; i++) v[i] = rnd.nextFloat() * 2 - 1;
                t.copyFrom(v);
            }
        }
        return new LoadedModel(Path.of("random"), "test", "F32", c, w, tokenizer(c.vocabSize()));
    }

    /** Asserts equal configs (optionally ignoring the context length) and bitwise-equal weights. */
    static void assertSameModel(LoadedModel expected, LoadedModel actual, boolean sameContext) {
        LlamaConfig a = expected.config(), b = actual.config();
        assertEquals(sameContext ? a : a.withContextLength(b.contextLength()), b);
        assertEquals(a.tiedEmbeddings(), actual.weights().tied());
        for (WeightSlot slot : WeightSlot.values()) {
            for (int layer = 0; layer < (slot.perLayer ? a.nLayers() : 1); layer++) {
                Tensor x = slot.of(expected.weights(), layer), y = slot.of(actual.weights(), layer);
                assertArrayEquals(x.shape(), y.shape(), slot + " " + layer);
                assertArrayEquals(x.toFloatArray(), y.toFloatArray(), slot + " " + layer);
            }
        }
    }

    /** Asserts the exception's message starts with the file and contains every fragment. */
    static void assertMessage(ModelFormatException e, Path file, String... fragments) {
        assertTrue(e.getMessage().startsWith(file.toString() + ": "), e.getMessage());
        assertEquals(file, e.file());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "\"" + f + "\" not in: " + e.getMessage());
    }
}
