package io.skipgpt.model;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.RopeStyle;
import io.skipgpt.tensor.Tensor;

/**
 * The LLaMA decoder: token embedding, {@code nLayers} pre-norm blocks (grouped-query attention with RoPE,
 * SwiGLU MLP), final RMSNorm and output head. A forward pass takes the next n tokens of a sequence, runs them
 * as matrices (GEMMs over all n rows: prefill and decode are the same code with different n), appends their
 * keys and values to the cache and returns logits only for the rows asked for.
 */
public final class LlamaModel implements AutoCloseable {
    private final LlamaConfig config;
    private final LlamaWeights weights;
    private final Backend backend;
    private final Workspace ws;

    public LlamaModel(LlamaConfig config, LlamaWeights weights, Backend backend) {
        this.config = config;
        this.weights = weights;
        this.backend = backend;
        this.ws = new Workspace(config);
    }

    public LlamaConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    public KvCache newCache(int capacity) {
        return new KvCache(config, capacity);
    }

    /**
     * Runs {@code tokens} at positions {@code cache.length() ..} and appends them to the cache.
     *
     * @param logits [logitRows, vocab], filled with the logits of the last {@code logitRows} tokens
     *     (1 for generation, all n for scoring); may be null when no logits are needed
     */
    public void forward(int[] tokens, KvCache cache, Tensor logits) {
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
        for (int l = 0; l < config.nLayers(); l++) {
            attentionBlock(l, x, pos, cache, start, n);
            mlpBlock(l, x, n);
        }
        cache.advance(n);
        if (logits != null) head(x, logits);
    }

    // x += Wo · attention(rope(Wq · norm(x)), cache); K and V of all n rows go into the cache first.
    private void attentionBlock(int l, Tensor x, Tensor pos, KvCache cache, int start, int n) {
        LlamaWeights.Layer w = weights.layers().get(l);
        int hd = config.headDim();
        Tensor xb = ws.xb.rows(0, n);
        backend.rmsnorm(xb, x, w.attnNorm(), config.normEps());
        Tensor q = ws.q.rows(0, n);
        Tensor k = cache.keys(l).rows(start, n);
        Tensor v = cache.values(l).rows(start, n);
        backend.matmul(q, xb, w.wq());
        backend.matmul(k, xb, w.wk());
        backend.matmul(v, xb, w.wv());
        backend.rope(q, pos, hd, config.ropeTheta(), RopeStyle.ADJACENT);
        backend.rope(k, pos, hd, config.ropeTheta(), RopeStyle.ADJACENT);
        Tensor att = ws.att.rows(0, n);
        int t = start + n;
        backend.attention(att, q, cache.keys(l).rows(0, t), cache.values(l).rows(0, t), pos,
                config.nHeads(), config.nKvHeads(), hd);
        Tensor proj = ws.proj.rows(0, n);
        backend.matmul(proj, att, w.wo());
        backend.add(x, proj);
    }

    // x += Wdown · (silu(Wgate · norm(x)) * (Wup · norm(x)))
    private void mlpBlock(int l, Tensor x, int n) {
        LlamaWeights.Layer w = weights.layers().get(l);
        Tensor xb = ws.xb.rows(0, n);
        backend.rmsnorm(xb, x, w.ffnNorm(), config.normEps());
        Tensor gate = ws.gate.rows(0, n);
        Tensor up = ws.up.rows(0, n);
        backend.matmul(gate, xb, w.wGate());
        backend.matmul(up, xb, w.wUp());
        backend.swiglu(gate, gate, up);
        Tensor proj = ws.proj.rows(0, n);
        backend.matmul(proj, gate, w.wDown());
        backend.add(x, proj);
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
