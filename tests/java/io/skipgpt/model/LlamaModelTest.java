package io.skipgpt.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.ReferenceBackend;
import io.skipgpt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The forward pass is consistent with itself (prefill = decode) and across backends. */
class LlamaModelTest {
    // Awkward on purpose: GQA group 3, head dim 6, hidden not a multiple of 8, untied head.
    static final LlamaConfig CONFIG = new LlamaConfig(36, 70, 3, 6, 2, 97, 64, 10000f, 1e-5f, false);
    static final int[] TOKENS = {1, 17, 42, 96, 0, 5, 5, 63, 12};
    static LlamaWeights weights;

    @BeforeAll
    static void build() {
        weights = RandomWeights.create(CONFIG, 7);
    }

    @AfterAll
    static void free() {
        weights.close();
    }

    @Test
    void prefillEqualsTokenByTokenDecode() {
        try (Backend b = new CpuBackend(); LlamaModel model = new LlamaModel(CONFIG, weights, b)) {
            float[][] full = logitsAllRows(model, TOKENS);
            try (KvCache cache = model.newCache(TOKENS.length); Tensor logits = Tensor.f32(1, CONFIG.vocabSize())) {
                for (int i = 0; i < TOKENS.length; i++) {
                    model.forward(new int[] {TOKENS[i]}, cache, logits);
                    assertClose(full[i], logits.toFloatArray(), 1e-4, "position " + i);
                }
            }
        }
    }

    @Test
    void chunkedPrefillEqualsOnePass() {
        try (Backend b = new CpuBackend(); LlamaModel model = new LlamaModel(CONFIG, weights, b)) {
            float[][] full = logitsAllRows(model, TOKENS);
            try (KvCache cache = model.newCache(TOKENS.length); Tensor logits = Tensor.f32(5, CONFIG.vocabSize())) {
                model.forward(java.util.Arrays.copyOfRange(TOKENS, 0, 4), cache, null);
                model.forward(java.util.Arrays.copyOfRange(TOKENS, 4, 9), cache, logits);
                for (int i = 0; i < 5; i++) {
                    assertClose(full[4 + i], logits.rows(i, 1).toFloatArray(), 1e-4, "row " + (4 + i));
                }
            }
        }
    }

    @Test
    void cpuBackendMatchesReference() {
        float[][] ref;
        try (Backend b = new ReferenceBackend(); LlamaModel model = new LlamaModel(CONFIG, weights, b)) {
            ref = logitsAllRows(model, TOKENS);
        }
        try (Backend b = new CpuBackend(); LlamaModel model = new LlamaModel(CONFIG, weights, b)) {
            float[][] cpu = logitsAllRows(model, TOKENS);
            for (int i = 0; i < TOKENS.length; i++) assertClose(ref[i], cpu[i], 1e-4, "row " + i);
        }
    }

    @Test
    void rejectsOverflowAndBadTokens() {
        try (Backend b = new CpuBackend(); LlamaModel model = new LlamaModel(CONFIG, weights, b);
                KvCache cache = model.newCache(4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.forward(new int[] {1, 2, 3, 4, 5}, cache, null));
            assertTrue(e.getMessage().contains("capacity"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> model.forward(new int[] {97}, cache, null));
            assertTrue(e.getMessage().contains("vocabulary"), e.getMessage());
        }
    }

    static float[][] logitsAllRows(LlamaModel model, int[] tokens) {
        try (KvCache cache = model.newCache(tokens.length);
                Tensor logits = Tensor.f32(tokens.length, model.config().vocabSize())) {
            model.forward(tokens, cache, logits);
            float[][] rows = new float[tokens.length][];
            for (int i = 0; i < tokens.length; i++) rows[i] = logits.rows(i, 1).toFloatArray();
            return rows;
        }
    }

    static void assertClose(float[] expected, float[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what);
        double max = 0;
        for (int i = 0; i < expected.length; i++) {
            max = Math.max(max, Math.abs(expected[i] - actual[i]) / Math.max(1.0, Math.abs(expected[i])));
        }
        assertTrue(max <= tol, what + ": max relative error " + max + " > " + tol);
    }
}
