package io.skipgpt.eval;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.Routing;
import io.skipgpt.tensor.Tensor;

/**
 * A {@link LlamaModel} as a {@link ZeroShot.LanguageModel}: each call runs the sequence in one forward pass from an
 * empty cache (routed as asked, counted in the routing's statistics) and returns the logits of its last rows.
 */
public final class ModelLogits implements ZeroShot.LanguageModel, AutoCloseable {
    private final LlamaModel model;
    private final Routing routing;
    private final int window;
    private final KvCache cache;
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
        cache.clear();
        Tensor out = logits.rows(0, rows);
        model.forward(tokens, cache, out, routing);
        return out.toFloatArray();
    }

    @Override
    public void close() {
        cache.close();
        logits.close();
    }
}
