package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
import java.util.Arrays;
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
        }
    }

    /**
     * A gate sees each layer's input, the model's residual stream. Skipping only layer l's MLP makes layer l + 1's
     * input attention l's output residual h; in the dense pass it is MLP l's output. So the cosines of every module
     * but the last layer's two come from the model's own forward passes.
     */
    @Test
    void similaritiesAreTheCosinesBetweenTheResidualsThatGatesSee() {
        int[] ids = {1, 4, 8, 15, 16, 23, 42 % 40};
        int layers = CONFIG.nLayers();
        try (LlamaWeights w = RandomWeights.create(CONFIG, 5); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(CONFIG, w, b)) {
            double[] attn = new double[layers], mlp = new double[layers];
            new ModuleSimilarity(model).run(ids, attn, mlp, null);
            List<float[]> dense = layerInputs(model, ids, -1);
            for (int l = 0; l + 1 < layers; l++) {
                float[] h = layerInputs(model, ids, l).get(l + 1);
                assertEquals(cosineSum(dense.get(l), h), attn[l], 1e-4, "attention " + l);
                assertEquals(cosineSum(h, dense.get(l + 1)), mlp[l], 1e-4, "mlp " + l);
            }
        }
    }

    /** The input of every layer in a forward pass that skips only the MLP of layer {@code skipMlp} (-1: none). */
    private static List<float[]> layerInputs(LlamaModel model, int[] ids, int skipMlp) {
        List<float[]> inputs = new ArrayList<>();
        Gate recording = (layer, x, keepAttn, keepMlp) -> {
            inputs.add(x.toFloatArray());
            Arrays.fill(keepAttn, 0, x.rows(), true);
            Arrays.fill(keepMlp, 0, x.rows(), layer != skipMlp);
        };
        try (KvCache cache = model.newCache(ids.length)) {
            model.forward(ids, cache, null, Routing.routed(recording, null));
        }
        return inputs;
    }

    /** The sum over rows of the cosine similarity of a's and b's rows ([n, dim] each, row-major). */
    private static double cosineSum(float[] a, float[] b) {
        int d = CONFIG.dim();
        double sum = 0;
        for (int i = 0; i < a.length / d; i++) {
            double ab = 0, aa = 0, bb = 0;
            for (int j = i * d; j < (i + 1) * d; j++) {
                ab += (double) a[j] * b[j];
                aa += (double) a[j] * a[j];
                bb += (double) b[j] * b[j];
            }
            sum += ab / Math.sqrt(aa * bb);
        }
        return sum;
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
