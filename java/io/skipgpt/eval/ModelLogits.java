package io.skipgpt.eval;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.Routing;
import io.skipgpt.tensor.Tensor;
import java.util.Arrays;

/**
 * A {@link LlamaModel} as a {@link ZeroShot.LanguageModel}: each call returns the logits of the last rows of a
 * sequence, routed as asked and counted in the routing's statistics. The cache keeps the previous sequence, and a
 * call runs only what follows the longest prefix it shares with it: the choices of one item share its context,
 * which is then run once per item instead of once per choice. A row's result does not depend on rows after it
 * (causal attention, per-row gates), so this changes no decision and no logit beyond float rounding of GEMMs
 * over fewer rows; a gate that draws random numbers draws fewer of them.
 */
public final class ModelLogits implements ZeroShot.LanguageModel, AutoCloseable {
    private final LlamaModel model;
    private final Routing routing;
    private final int window;
    private final KvCache cache;
    private int[] cached = new int[0]; // the tokens whose keys and values the cache holds, in order
    private Tensor logits;

    /** @param window the most tokens one pass takes (the context the model was trained at, or less) */
    public ModelLogits(LlamaModel model, Routing routing, int window) {
        if (window < 2) throw new IllegalArgumentException("window must be at least 2 tokens, got " + window);
        this.model = model;
        this.routing = routing;
        this.window = window;
        this.cache = model.newCache(window);
        this.logits = Tensor.f32(1, model.config().vocabSize());
    }

    @Override
    public int vocabSize() {
        return model.config().vocabSize();
    }

    @Override
    public int maxTokens() {
        return window;
    }

    @Override
    public float[] lastLogits(int[] tokens, int rows) {
        if (rows > logits.rows()) {
            logits.close();
            logits = Tensor.f32(rows, vocabSize());
        }
        // Keep the shared prefix, but run at least the rows whose logits are asked for.
        int shared = Arrays.mismatch(cached, tokens);
        int keep = Math.min(shared < 0 ? cached.length : shared, tokens.length - rows);
        cache.truncate(keep);
        Tensor out = logits.rows(0, rows);
        model.forward(Arrays.copyOfRange(tokens, keep, tokens.length), cache, out, routing);
        cached = tokens.clone();
        return out.toFloatArray();
    }

    @Override
    public void close() {
        cache.close();
        logits.close();
    }
}
