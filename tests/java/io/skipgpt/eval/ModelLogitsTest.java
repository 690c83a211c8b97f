package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.routing.StaticSkip;
import io.skipgpt.tensor.CpuBackend;
import org.junit.jupiter.api.Test;

/**
 * Choices that share a context: the cached prefix is reused, which must give the logits of a fresh pass and
 * run fewer rows.
 */
class ModelLogitsTest {
    static final LlamaConfig CONFIG = new LlamaConfig(40, 72, 3, 4, 2, 61, 64, 10000f, 1e-5f, false);

    @Test
    void sharedPrefixesAreRunOnce() {
        int[] context = {1, 9, 33, 60, 2, 17, 5, 8};
        int[][] requests = {concat(context, 11, 12), concat(context, 13), concat(context, 13, 14, 15), {1, 4}, {1, 4}};
        int[] rows = {2, 1, 3, 1, 1};
        try (LlamaWeights weights = RandomWeights.create(CONFIG, 5); CpuBackend backend = new CpuBackend();
             LlamaModel model = new LlamaModel(CONFIG, weights, backend)) {
            RoutingStats reused = new RoutingStats(CONFIG);
            long fresh = 0;
            try (ModelLogits shared = new ModelLogits(model, Routing.routed(StaticSkip.parse("mlp:1", 3), reused), 32)) {
                for (int r = 0; r < requests.length; r++) {
                    float[] got = shared.lastLogits(requests[r], rows[r]);
                    try (ModelLogits alone = new ModelLogits(model, Routing.routed(StaticSkip.parse("mlp:1", 3), null), 32)) {
                        float[] expected = alone.lastLogits(requests[r], rows[r]);
                        assertEquals(expected.length, got.length);
                        for (int i = 0; i < expected.length; i++) {
                            assertEquals(expected[i], got[i], 1e-5 * Math.max(1, Math.abs(expected[i])), "request " + r);
                        }
                    }
                    fresh += requests[r].length;
                }
            }
            // the first request whole; then what follows the shared prefix, at least the asked rows: 1 after the
            // context, 3 (its asked rows), then {1, 4} shares the BOS token, and again: its asked row only
            assertEquals(10 + 1 + 3 + 1 + 1, reused.tokens());
            assertTrue(reused.tokens() < fresh);
        }
    }

    private static int[] concat(int[] a, int... b) {
        int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
