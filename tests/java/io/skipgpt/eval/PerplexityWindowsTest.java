package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.EmulatedDevice;
import io.skipgpt.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Windows overlap by one token and every token after BOS is predicted exactly once; one cache and one set of
 * tensors serve every window of a call.
 */
class PerplexityWindowsTest {
    static final LlamaConfig CONFIG = new LlamaConfig(16, 24, 2, 4, 2, 50, 64, 10000f, 1e-5f, true);

    @Test
    void everyTokenPredictedOnceAcrossWindows() {
        int[] ids = {1, 5, 9, 13, 2, 44, 7, 7, 30, 21, 8, 3};
        try (LlamaWeights w = RandomWeights.create(CONFIG, 3); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(CONFIG, w, b)) {
            Perplexity.Result windowed = new Perplexity(model, null, 5).scoreIds(ids);
            assertEquals(ids.length - 1, windowed.tokens());
            // The same sum computed by hand: windows [0,5) [4,9) [8,12), each from an empty cache.
            double expected = windowNll(model, ids, 0, 5) + windowNll(model, ids, 4, 9) + windowNll(model, ids, 8, 12);
            assertEquals(expected, windowed.nll(), 1e-4);
            Perplexity.Result onePass = new Perplexity(model, null, 64).scoreIds(ids);
            assertEquals(windowNll(model, ids, 0, ids.length), onePass.nll(), 1e-4);
        }
    }

    /** Documents scored together give what each gives alone, from one allocation sized for the longest window. */
    @Test
    void aCallAllocatesOnceForAllItsWindows() {
        List<int[]> docs = List.of(new int[] {1, 5, 9, 13, 2, 44, 7, 7, 30, 21, 8, 3}, new int[] {1, 4},
                new int[] {1, 8, 8, 2, 6, 40});
        try (LlamaWeights w = RandomWeights.create(CONFIG, 3); EmulatedDevice device = new EmulatedDevice();
                LlamaModel model = new LlamaModel(CONFIG, w, device)) {
            Perplexity ppl = new Perplexity(model, null, 5);
            Perplexity.Result alone = new Perplexity.Result(0, 0, 0);
            for (int[] ids : docs) alone = alone.plus(ppl.scoreIds(ids)); // also grows the model's workspace
            long before = device.allocations();
            assertEquals(alone, ppl.score(docs, null));
            assertEquals(2 * CONFIG.nLayers() + 3, device.allocations() - before,
                    "keys and values per layer, logits, losses and targets, once");
        }
    }

    private static double windowNll(LlamaModel model, int[] ids, int from, int to) {
        int n = to - from;
        try (KvCache cache = model.newCache(n); Tensor logits = Tensor.f32(n, CONFIG.vocabSize())) {
            model.forward(java.util.Arrays.copyOfRange(ids, from, to), cache, logits);
            double nll = 0;
            for (int i = 0; i < n - 1; i++) {
                float[] row = logits.rows(i, 1).toFloatArray();
                double max = Double.NEGATIVE_INFINITY;
                for (float v : row) max = Math.max(max, v);
                double sum = 0;
                for (float v : row) sum += Math.exp(v - max);
                nll += Math.log(sum) + max - row[ids[from + i + 1]];
            }
            return nll;
        }
    }
}
