package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.Gate;
import io.skipgpt.routing.Routing;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ModuleSimilarityTest {
    static final LlamaConfig CONFIG = StaticSkipSearchTest.CONFIG;

    @Test
    void theOwnDensePassMatchesTheModel() {
        int[] ids = {1, 7, 3, 22, 9, 30, 5, 5, 12, 39, 2};
        int n = ids.length;
        try (LlamaWeights w = RandomWeights.create(CONFIG, 21); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(CONFIG, w, b); Tensor x = Tensor.f32(n, CONFIG.dim());
                Tensor xb = Tensor.f32(n, CONFIG.dim()); Tensor mine = Tensor.f32(n, CONFIG.vocabSize());
                Tensor theirs = Tensor.f32(n, CONFIG.vocabSize()); KvCache cache = model.newCache(n)) {
            double[] attn = new double[CONFIG.nLayers()], mlp = new double[CONFIG.nLayers()];
            new ModuleSimilarity(model).run(ids, attn, mlp, x);
            b.rmsnorm(xb, x, w.outputNorm(), CONFIG.normEps());
            b.matmul(mine, xb, w.output());
            model.forward(ids, cache, theirs);
            float[] m = mine.toFloatArray(), t = theirs.toFloatArray();
            for (int i = 0; i < m.length; i++) assertEquals(t[i], m[i], 1e-4 * (1 + Math.abs(t[i])), "logit " + i);
            for (int l = 0; l < CONFIG.nLayers(); l++) {
                assertTrue(attn[l] / n > -1 && attn[l] / n < 1, "mean cosine of attention " + l + ": " + attn[l] / n);
                assertTrue(mlp[l] / n > -1 && mlp[l] / n < 1, "mean cosine of mlp " + l + ": " + mlp[l] / n);
            }
        }
    }

    @Test
    void attentionSimilarityIsTheCosineBetweenConsecutiveLayerInputsWhenTheMlpIsSkipped() {
        // With every MLP skipped, layer l+1's input is layer l's h: a gate sees both sides of attention l.
        int[] ids = {1, 4, 8, 15, 16, 23, 42 % 40};
        try (LlamaWeights w = RandomWeights.create(CONFIG, 5); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(CONFIG, w, b); KvCache cache = model.newCache(ids.length)) {
            List<float[]> inputs = new ArrayList<>();
            Gate attnOnly = (layer, x, keepAttn, keepMlp) -> {
                inputs.add(x.toFloatArray());
                java.util.Arrays.fill(keepAttn, 0, x.rows(), true);
                java.util.Arrays.fill(keepMlp, 0, x.rows(), false);
            };
            model.forward(ids, cache, null, Routing.routed(attnOnly, null));
            double expected = 0;
            int d = CONFIG.dim();
            for (int i = 0; i < ids.length; i++) {
                double ab = 0, aa = 0, bb = 0;
                for (int j = 0; j < d; j++) {
                    double a = inputs.get(0)[i * d + j], c = inputs.get(1)[i * d + j];
                    ab += a * c;
                    aa += a * a;
                    bb += c * c;
                }
                expected += ab / Math.sqrt(aa * bb);
            }
            double[] attn = new double[CONFIG.nLayers()], mlp = new double[CONFIG.nLayers()];
            new ModuleSimilarity(model).run(ids, attn, mlp, null);
            assertEquals(expected, attn[0], 1e-4);
        }
    }

    @Test
    void cosineSelectionSkipsTheMostSimilarModules() {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 9); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(CONFIG, w, b)) {
            StaticSkipSearch search = new StaticSkipSearch(model, StaticSkipSearchTest.CHARS, StaticSkipSearchTest.TEXT, 64);
            ModuleSimilarity.Scores s = search.similarity();
            assertEquals(1 + "a small calibration text".length() + 1 + "with two documents in it".length(), s.tokens(),
                    "two documents, each with BOS");
            // hand-made scores: mlp 1 and attention 2 change the stream least
            ModuleSimilarity.Scores fixed = new ModuleSimilarity.Scores(new double[] {0.1, 0.5, 0.9}, new double[] {0.3, 0.95, 0.2}, 1);
            StaticSkipSearch.Candidate two = search.byCosine(2, fixed);
            assertEquals("attn:2,mlp:1", two.spec());
            double ppl = new Perplexity(model, StaticSkipSearchTest.CHARS, 64,
                    Routing.routed(io.skipgpt.routing.StaticSkip.parse("attn:2,mlp:1", 3), null))
                    .score(StaticSkipSearchTest.TEXT, null).ppl();
            assertEquals(ppl, two.ppl(), 1e-9);
            assertEquals("", search.byCosine(0, fixed).spec());
        }
    }
}
