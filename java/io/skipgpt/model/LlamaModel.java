package io.skipgpt.model;

import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.RopeStyle;
import io.skipgpt.tensor.Tensor;

/**
 * The LLaMA decoder: token embedding, {@code nLayers} pre-norm blocks (grouped-query attention with RoPE,
 * SwiGLU MLP), final RMSNorm and output head. A forward pass takes the next n tokens of a sequence, runs them
 * as matrices (GEMMs over all n rows: prefill and decode are the same code with different n), appends their
 * keys and values to the cache and returns logits only for the rows asked for.
 *
 * <p>With SkipGPT routing, a gate decides per row and layer whether attention and MLP run:
 * {@code h = x + g_att * Attn(norm(x))}, {@code out = h + g_mlp * MLP(norm(h))}. Routed execution gathers the
 * kept rows, runs the sublayer on them only and scatter-adds the result into the residual. A row that skips
 * attention still has its K and V computed and cached (later rows attend to it); only its Q, attention row and
 * O projection are skipped.
 *
 * <p>An {@link Adapter} (LoRA) adds its term after each base projection, unmerged, on the rows that projection
 * ran on.
 */
public final class LlamaModel implements AutoCloseable {
    private final LlamaConfig config;
    private final LlamaWeights weights;
    private final Backend backend;
    private final Adapter adapter;
    private final Workspace ws;

    public LlamaModel(LlamaConfig config, LlamaWeights weights, Backend backend) {
        this(config, weights, backend, Adapter.NONE);
    }

    public LlamaModel(LlamaConfig config, LlamaWeights weights, Backend backend, Adapter adapter) {
        this.config = config;
        this.weights = weights;
        this.backend = backend;
        this.adapter = adapter;
        this.ws = new Workspace(config);
    }

    public LlamaConfig config() {
        return config;
    }

    public LlamaWeights weights() {
        return weights;
    }

    public Backend backend() {
        return backend;
    }

    public KvCache newCache(int capacity) {
        return new KvCache(config, capacity);
    }

    /** A dense forward pass: see {@link #forward(int[], KvCache, Tensor, Routing)}. */
    public void forward(int[] tokens, KvCache cache, Tensor logits) {
        forward(tokens, cache, logits, Routing.DENSE);
    }

    /**
     * Runs {@code tokens} at positions {@code cache.length() ..} and appends them to the cache.
     *
     * @param logits [logitRows, vocab], filled with the logits of the last {@code logitRows} tokens
     *     (1 for generation, all n for scoring); may be null when no logits are needed
     * @param routing which modules run for which rows, and where to count the decisions
     */
    public void forward(int[] tokens, KvCache cache, Tensor logits, Routing routing) {
        int n = tokens.length;
        int start = cache.length();
        if (n == 0) throw new IllegalArgumentException("forward: no tokens");
        if (start + n > cache.capacity()) {
            throw new IllegalArgumentException("forward: " + (start + n) + " positions exceed the KV cache capacity "
                    + cache.capacity());
        }
        ws.ensure(n);
        Tensor ids = ws.ids.rows(0, n);
        Tensor pos = ws.pos.rows(0, n);
        for (int i = 0; i < n; i++) {
            if (tokens[i] < 0 || tokens[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + tokens[i] + " outside the vocabulary of "
                        + config.vocabSize());
            }
            ids.setInt(i, tokens[i]);
            pos.setInt(i, start + i);
        }
        Tensor x = ws.x.rows(0, n);
        backend.embedding(x, weights.tokenEmbedding(), ids);
        boolean masked = routing.execution() == Routing.Execution.MASKED_DENSE;
        for (int l = 0; l < config.nLayers(); l++) {
            routing.gate().decide(l, x, ws.keepAttn, ws.keepMlp);
            int attnKept = attentionBlock(l, x, pos, cache, start, n, masked);
            int mlpKept = mlpBlock(l, x, n, masked);
            if (routing.stats() != null) record(routing.stats(), l, n, start, attnKept, mlpKept);
        }
        cache.advance(n);
        if (logits != null) head(x, logits);
    }

    // x += g_att * Wo · attention(rope(Wq · norm(x)), cache); K and V of all n rows go into the cache first.
    // Returns the number of rows that ran attention.
    private int attentionBlock(int l, Tensor x, Tensor pos, KvCache cache, int start, int n, boolean masked) {
        LlamaWeights.Layer w = weights.layers().get(l);
        int hd = config.headDim();
        Tensor xb = ws.xb.rows(0, n);
        backend.rmsnorm(xb, x, w.attnNorm(), config.normEps());
        Tensor k = cache.keys(l).rows(start, n);
        Tensor v = cache.values(l).rows(start, n);
        project(k, xb, l, Projection.K);
        project(v, xb, l, Projection.V);
        backend.rope(k, pos, hd, config.ropeTheta(), RopeStyle.ADJACENT);
        int kept = masked ? n : compact(ws.keepAttn, n, pos);
        if (kept == 0) return 0;
        // Rows that run: all of them (dense, masked) or the gathered kept ones at their original positions.
        Tensor in = xb, qPos = pos;
        if (kept < n) {
            in = ws.xg.rows(0, kept);
            backend.gatherRows(in, xb, ws.idx.rows(0, kept));
            qPos = ws.keptPos.rows(0, kept);
        }
        Tensor q = ws.q.rows(0, kept);
        project(q, in, l, Projection.Q);
        backend.rope(q, qPos, hd, config.ropeTheta(), RopeStyle.ADJACENT);
        Tensor att = ws.att.rows(0, kept);
        int t = start + n;
        backend.attention(att, q, cache.keys(l).rows(0, t), cache.values(l).rows(0, t), qPos,
                config.nHeads(), config.nKvHeads(), hd);
        Tensor proj = ws.proj.rows(0, kept);
        project(proj, att, l, Projection.O);
        return residual(x, proj, kept, n, masked ? ws.keepAttn : null);
    }

    // x += g_mlp * Wdown · (silu(Wgate · norm(x)) * (Wup · norm(x))). Returns the number of rows that ran it.
    private int mlpBlock(int l, Tensor x, int n, boolean masked) {
        LlamaWeights.Layer w = weights.layers().get(l);
        int kept = masked ? n : compact(ws.keepMlp, n, null);
        if (kept == 0) return 0;
        Tensor in = x;
        if (kept < n) {
            in = ws.xg.rows(0, kept);
            backend.gatherRows(in, x, ws.idx.rows(0, kept));
        }
        Tensor xb = ws.xb.rows(0, kept);
        backend.rmsnorm(xb, in, w.ffnNorm(), config.normEps());
        Tensor gate = ws.gate.rows(0, kept);
        Tensor up = ws.up.rows(0, kept);
        project(gate, xb, l, Projection.GATE);
        project(up, xb, l, Projection.UP);
        backend.swiglu(gate, gate, up);
        Tensor proj = ws.proj.rows(0, kept);
        project(proj, gate, l, Projection.DOWN);
        return residual(x, proj, kept, n, masked ? ws.keepMlp : null);
    }

    // out = x·Wᵀ for projection p of layer l, plus the adapter's term.
    private void project(Tensor out, Tensor x, int l, Projection p) {
        backend.matmul(out, x, p.of(weights.layers().get(l)));
        adapter.addTo(out, x, l, p, backend);
    }

    // Adds a sublayer's output into the residual: all rows, the kept rows by index, or (masked-dense) every row
    // multiplied by its 0/1 gate. Returns the number of rows whose gate is 1.
    private int residual(Tensor x, Tensor proj, int kept, int n, boolean[] maskedGates) {
        if (maskedGates != null) {
            int ones = 0;
            int d = proj.cols();
            for (int i = 0; i < n; i++) {
                if (maskedGates[i]) {
                    ones++;
                } else {
                    for (int j = 0; j < d; j++) proj.set((long) i * d + j, 0f);
                }
            }
            backend.add(x, proj);
            return ones;
        }
        if (kept == n) backend.add(x, proj);
        else backend.scatterAddRows(x, proj, ws.idx.rows(0, kept));
        return kept;
    }

    // Compaction of a keep mask: ws.idx[0..count) = kept rows in order (and their positions, when asked).
    private int compact(boolean[] keep, int n, Tensor pos) {
        int count = 0;
        for (int i = 0; i < n; i++) {
            if (!keep[i]) continue;
            ws.idx.setInt(count, i);
            if (pos != null) ws.keptPos.setInt(count, pos.getInt(i));
            count++;
        }
        return count;
    }

    private void record(RoutingStats stats, int layer, int n, int start, int attnKept, int mlpKept) {
        long all = 0, kept = 0;
        for (int i = 0; i < n; i++) {
            long keys = start + i + 1;
            all += keys;
            if (ws.keepAttn[i]) kept += keys;
        }
        stats.record(layer, n, attnKept, mlpKept, all, kept);
    }

    // logits = norm(x[last rows]) · Eᵀ, only for the rows the caller wants.
    private void head(Tensor x, Tensor logits) {
        int rows = logits.rows();
        int n = x.rows();
        if (rows > n || logits.cols() != config.vocabSize()) {
            throw new IllegalArgumentException("forward: logits " + logits + " do not fit " + n + " rows x vocab "
                    + config.vocabSize());
        }
        Tensor last = x.rows(n - rows, rows);
        Tensor xb = ws.xb.rows(0, rows);
        backend.rmsnorm(xb, last, weights.outputNorm(), config.normEps());
        backend.matmul(logits, xb, weights.output());
    }

    @Override
    public void close() {
        ws.close();
    }
}
