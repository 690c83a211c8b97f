package io.skipgpt.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Routed execution (gather, sublayer on kept rows, scatter-add) gives the logits of masked-dense execution. */
class RoutedForwardTest {
    static final LlamaConfig CONFIG = new LlamaConfig(40, 72, 4, 4, 2, 61, 64, 10000f, 1e-5f, false);
    static final int[] TOKENS = {1, 9, 33, 60, 2, 2, 17, 41, 5, 58, 12};
    static LlamaWeights weights;
    static Backend backend;
    static LlamaModel model;

    @BeforeAll
    static void build() {
        weights = RandomWeights.create(CONFIG, 11);
        backend = new CpuBackend();
        model = new LlamaModel(CONFIG, weights, backend);
    }

    @AfterAll
    static void free() {
        model.close();
        backend.close();
        weights.close();
    }

    @Test
    void routedMatchesMaskedDenseInPrefill() {
        try (Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 5)) {
            RoutingStats routedStats = new RoutingStats(CONFIG), maskedStats = new RoutingStats(CONFIG);
            float[][] routed = logits(TOKENS, new Routing(gate(routers), Routing.Execution.ROUTED, routedStats));
            float[][] masked = logits(TOKENS, new Routing(gate(routers), Routing.Execution.MASKED_DENSE, maskedStats));
            for (int i = 0; i < TOKENS.length; i++) assertClose(masked[i], routed[i], "row " + i);
            assertArrayEquals(maskedStats.attnKeep(), routedStats.attnKeep());
            assertArrayEquals(maskedStats.mlpKeep(), routedStats.mlpKeep());
            double sparsity = routedStats.moduleSparsity();
            assertTrue(sparsity > 0.15 && sparsity < 0.85, "random routers should skip some, not all: " + sparsity);
        }
    }

    @Test
    void routedDecodeMatchesRoutedPrefill() {
        // Decisions are per token, so one pass over the prompt and one token at a time must agree exactly.
        try (Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 8)) {
            float[][] prefill = logits(TOKENS, Routing.routed(gate(routers), null));
            try (KvCache cache = model.newCache(TOKENS.length); Tensor row = Tensor.f32(1, CONFIG.vocabSize())) {
                for (int i = 0; i < TOKENS.length; i++) {
                    model.forward(new int[] {TOKENS[i]}, cache, row, Routing.routed(gate(routers), null));
                    assertClose(prefill[i], row.toFloatArray(), "decode step " + i);
                }
            }
        }
    }

    @Test
    void skippingEverythingLeavesOnlyTheEmbedding() {
        String all = "attn:0-3,mlp:0-3";
        float[][] routed = logits(TOKENS, Routing.routed(StaticSkip.parse(all, 4), null));
        float[][] masked = logits(TOKENS, new Routing(StaticSkip.parse(all, 4), Routing.Execution.MASKED_DENSE, null));
        for (int i = 0; i < TOKENS.length; i++) assertClose(masked[i], routed[i], "row " + i);
        // Equal tokens at different positions: with no attention anywhere, position cannot matter.
        assertClose(routed[4], routed[5], "token 2 at positions 4 and 5");
    }

    @Test
    void keepingEverythingIsDense() {
        float[][] dense = logits(TOKENS, Routing.DENSE);
        float[][] routed = logits(TOKENS, Routing.routed(StaticSkip.parse("", 4), null));
        for (int i = 0; i < TOKENS.length; i++) assertArrayEquals(dense[i], routed[i], "row " + i);
    }

    @Test
    void statisticsOfAStaticSkip() {
        RoutingStats stats = new RoutingStats(CONFIG);
        logits(TOKENS, Routing.routed(StaticSkip.parse("attn:1,mlp:2-3", 4), stats));
        assertEquals(TOKENS.length, stats.tokens());
        assertArrayEquals(new double[] {1, 0, 1, 1}, stats.attnKeep());
        assertArrayEquals(new double[] {1, 1, 0, 0}, stats.mlpKeep());
        assertEquals(3.0 / 8, stats.moduleSparsity(), 1e-12);
        int d = 40, q = 40, kv = 20, h = 72;
        double attnParams = 2.0 * d * q + 2.0 * d * kv, mlpParams = 3.0 * d * h;
        assertEquals((attnParams + 2 * mlpParams) / (4 * (attnParams + mlpParams)), stats.paramSparsity(), 1e-12);
        // FLOPs by hand: a skipped attention keeps its K/V projections.
        long keys = 0;
        for (int i = 0; i < TOKENS.length; i++) keys += i + 1;
        double perTokenDense = 4.0 * d * q + 4.0 * d * kv + 6.0 * d * h;
        double dense = 4 * (TOKENS.length * perTokenDense + 4.0 * q * keys);
        double saved = TOKENS.length * 4.0 * d * q + 4.0 * q * keys + 2 * TOKENS.length * 6.0 * d * h;
        assertEquals(saved / dense, stats.flopSaving(), 1e-12);
    }

    @Test
    void badSkipSpecsAreExplained() {
        for (String bad : new String[] {"attn:4", "ffn:1", "attn", "mlp:x", "mlp:3-1"}) {
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> StaticSkip.parse(bad, 4));
            assertTrue(e.getMessage().contains(bad), e.getMessage());
        }
    }

    private RouterGate gate(Routers routers) {
        return new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0);
    }

    private static float[][] logits(int[] tokens, Routing routing) {
        try (KvCache cache = model.newCache(tokens.length); Tensor logits = Tensor.f32(tokens.length, CONFIG.vocabSize())) {
            model.forward(tokens, cache, logits, routing);
            float[][] rows = new float[tokens.length][];
            for (int i = 0; i < tokens.length; i++) rows[i] = logits.rows(i, 1).toFloatArray();
            return rows;
        }
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        double max = 0;
        for (int i = 0; i < expected.length; i++) {
            max = Math.max(max, Math.abs(expected[i] - actual[i]) / Math.max(1.0, Math.abs(expected[i])));
        }
        assertTrue(max <= 1e-5, what + ": max relative error " + max);
    }
}
