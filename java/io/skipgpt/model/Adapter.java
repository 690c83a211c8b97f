package io.skipgpt.model;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;

/**
 * Extra terms on a layer's projections, added to the base product: {@code y = x·Wᵀ + Δ(x)} (a LoRA adapter is
 * one). The model calls it right after each base projection, on exactly the rows that projection ran on — in
 * routed execution the gathered kept rows only.
 */
public interface Adapter extends AutoCloseable {
    /**
     * Adds Δ(x) for projection p of layer {@code layer} into {@code out} [n, p.outDim], which holds x·Wᵀ for
     * x [n, p.inDim]; nothing when this adapter does not adapt that projection.
     */
    void addTo(Tensor out, Tensor x, int layer, Projection p, Backend backend);

    /**
     * This adapter where {@code backend}'s ops read it: itself when it lives there already, else a new copy there
     * that the caller closes. {@link LlamaModel} calls it, as it uploads the weights.
     */
    default Adapter on(Backend backend) {
        return this;
    }

    /** Frees what the adapter holds: nothing unless it says otherwise. */
    @Override
    default void close() {}

    /** No adapter: the base model. */
    Adapter NONE = (out, x, layer, p, backend) -> {};
}
