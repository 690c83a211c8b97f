package io.skipgpt.eval;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.RopeStyle;
import io.skipgpt.tensor.Tensor;
import java.util.Arrays;
import java.util.List;

/**
 * How much each module changes the residual stream, ShortGPT-style but per module: the mean over calibration
 * tokens of the cosine similarity between a module's input residual and its output residual — for attention
 * {@code cos(x, h)} with {@code h = x + Attn(norm(x))}, for the MLP {@code cos(h, out)} with
 * {@code out = h + MLP(norm(h))}. A similarity near 1 means the module barely turns the stream: the first to skip.
 *
 * <p>The model's forward pass shows a gate only the layer input x, never h, so this class runs its own dense
 * forward pass with the public {@link Backend} ops over the model's weights, the same ops in the same order as
 * {@link LlamaModel}'s dense path (its test checks that the final residual gives the model's logits). Text is
 * scored as perplexity is: documents split on {@code <|endoftext|>} lines, each {@code [BOS] + tokens}, cut into
 * windows of the context length, each window from an empty context. It runs on the model's backend and device;
 * only the three row dot products per module come back to the host.
 */
public final class ModuleSimilarity {
    /** Mean cosine similarity per module over {@code tokens} positions. */
    public record Scores(double[] attn, double[] mlp, long tokens) {}

    private final LlamaConfig config;
    private final LlamaWeights weights;
    private final Backend backend;

    public ModuleSimilarity(LlamaModel model) {
        this.config = model.config();
        this.weights = model.weightsOnDevice();
        this.backend = model.backend();
    }

    /** Scores documents made by {@link Perplexity#encode}, each in windows of {@code context} tokens. */
    public Scores score(List<int[]> documents, int context) {
        if (context < 1) throw new IllegalArgumentException("context must be positive, got " + context);
        int layers = config.nLayers();
        double[] attn = new double[layers], mlp = new double[layers];
        long tokens = 0;
        for (int[] ids : documents) {
            for (int start = 0; start < ids.length; start += context) {
                int[] window = Arrays.copyOfRange(ids, start, Math.min(ids.length, start + context));
                run(window, attn, mlp, null);
                tokens += window.length;
            }
        }
        if (tokens == 0) throw new IllegalArgumentException("no calibration tokens");
        for (int l = 0; l < layers; l++) {
            attn[l] /= tokens;
            mlp[l] /= tokens;
        }
        return new Scores(attn, mlp, tokens);
    }

    /**
     * Runs one window densely from position 0, adding each row's cosine similarities into {@code attnSum} and
     * {@code mlpSum}; copies the final residual stream into {@code finalResidual} [n, dim] (on the host or the
     * backend's device) when it is not null.
     */
    void run(int[] ids, double[] attnSum, double[] mlpSum, Tensor finalResidual) {
        int n = ids.length, d = config.dim(), hd = config.headDim(), qDim = config.nHeads() * hd;
        int[] positions = new int[n];
        for (int i = 0; i < n; i++) positions[i] = i;
        try (Tensor hostIds = Tensor.ofInts(ids, n, 1); Tensor hostPos = Tensor.ofInts(positions, n, 1);
                Tensor idT = backend.upload(hostIds); Tensor pos = backend.upload(hostPos); Tensor x = f32(n, d);
                Tensor h = f32(n, d); Tensor xb = f32(n, d); Tensor q = f32(n, qDim);
                Tensor k = f32(n, config.kvDim()); Tensor v = f32(n, config.kvDim());
                Tensor att = f32(n, qDim); Tensor proj = f32(n, d); Tensor gate = f32(n, config.hiddenDim());
                Tensor up = f32(n, config.hiddenDim()); Tensor dots = f32(3, n)) {
            backend.embedding(x, weights.tokenEmbedding(), idT);
            for (int l = 0; l < config.nLayers(); l++) {
                LlamaWeights.Layer w = weights.layers().get(l);
                backend.rmsnorm(xb, x, w.attnNorm(), config.normEps());
                backend.matmul(k, xb, w.wk());
                backend.matmul(v, xb, w.wv());
                backend.rope(k, pos, hd, config.ropeTheta(), RopeStyle.ADJACENT);
                backend.matmul(q, xb, w.wq());
                backend.rope(q, pos, hd, config.ropeTheta(), RopeStyle.ADJACENT);
                backend.attention(att, q, k, v, pos, config.nHeads(), config.nKvHeads(), hd);
                backend.matmul(proj, att, w.wo());
                backend.copy(h, x);
                backend.add(h, proj);
                attnSum[l] += cosineSum(x, h, dots);
                backend.rmsnorm(xb, h, w.ffnNorm(), config.normEps());
                backend.matmul(gate, xb, w.wGate());
                backend.matmul(up, xb, w.wUp());
                backend.swiglu(gate, gate, up);
                backend.matmul(proj, gate, w.wDown());
                backend.copy(x, h);
                backend.add(x, proj);
                mlpSum[l] += cosineSum(h, x, dots);
            }
            if (finalResidual != null) backend.copy(finalResidual, x);
        }
    }

    private Tensor f32(int rows, int cols) {
        return backend.allocate(Tensor.DType.F32, rows, cols);
    }

    // Σ over rows of a_i·b_i / (|a_i| |b_i|); dots is scratch [3, n].
    private double cosineSum(Tensor a, Tensor b, Tensor dots) {
        int n = a.rows();
        Tensor ab = dots.rows(0, 1), aa = dots.rows(1, 1), bb = dots.rows(2, 1);
        backend.rowDot(ab, a, b);
        backend.rowDot(aa, a, a);
        backend.rowDot(bb, b, b);
        double sum = 0;
        try (Tensor host = backend.download(dots)) {
            for (int i = 0; i < n; i++) {
                double norms = Math.sqrt((double) host.get(n + i) * host.get(2L * n + i));
                sum += norms == 0 ? 1 : host.get(i) / norms;
            }
        }
        return sum;
    }
}
