package io.skipgpt.routing;

import io.skipgpt.tensor.Tensor;

/**
 * Decides, for each row at the top of a layer, whether its attention module and its MLP module execute.
 * Both decisions read the same tensor: the layer input (the un-normalised residual stream), so a router
 * never sees the post-attention state. A gate that holds memory (a {@link RouterGate}'s logits and device copy of
 * the routers) frees it on {@link #close}; the others have nothing to free.
 */
public interface Gate extends AutoCloseable {
    /**
     * @param layer the decoder layer
     * @param x [n, dim] the layer input
     * @param keepAttn out: keepAttn[i] is true iff row i runs attention at this layer (length >= n)
     * @param keepMlp out: likewise for the MLP
     */
    void decide(int layer, Tensor x, boolean[] keepAttn, boolean[] keepMlp);

    @Override
    default void close() {}

    /** Every module runs for every token. */
    Gate DENSE = (layer, x, keepAttn, keepMlp) -> {
        java.util.Arrays.fill(keepAttn, 0, x.rows(), true);
        java.util.Arrays.fill(keepMlp, 0, x.rows(), true);
    };
}
