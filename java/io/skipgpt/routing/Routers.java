package io.skipgpt.routing;

import io.skipgpt.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * The SkipGPT routers of a model: per layer, {@code R_att} and {@code R_mlp}, each {@code Linear(dim -> 2)} with
 * bias in fp32, channel 0 = execute, channel 1 = skip. Both of a layer are stored as one [4, dim] block
 * (rows: attention execute, attention skip, MLP execute, MLP skip) so a layer's four logits come from one
 * [n, dim] x [dim, 4] product.
 */
public final class Routers implements AutoCloseable {
    public static final int ATTN_EXECUTE = 0, ATTN_SKIP = 1, MLP_EXECUTE = 2, MLP_SKIP = 3;

    private final int layers;
    private final int dim;
    private final Tensor weight; // [layers * 4, dim]
    private final Tensor bias; // [layers * 4, 1]

    public Routers(int layers, int dim) {
        if (layers <= 0 || dim <= 0) throw new IllegalArgumentException("routers need layers > 0 and dim > 0");
        this.layers = layers;
        this.dim = dim;
        this.weight = Tensor.f32(layers * 4, dim);
        this.bias = Tensor.f32(layers * 4, 1);
    }

    /**
     * Kaiming-uniform with linear gain (bound sqrt(3 / dim)) weights and zero bias, from a seed: at init both
     * channels are equally likely and decisions depend on the token.
     */
    public static Routers initialise(int layers, int dim, long seed) {
        Routers r = new Routers(layers, dim);
        SplittableRandom rng = new SplittableRandom(seed);
        double bound = Math.sqrt(3.0 / dim);
        for (long i = 0; i < r.weight.size(); i++) r.weight.set(i, (float) ((rng.nextDouble() * 2 - 1) * bound));
        return r;
    }

    public int layers() {
        return layers;
    }

    public int dim() {
        return dim;
    }

    /** All weights, [layers * 4, dim]. */
    public Tensor weight() {
        return weight;
    }

    /** All biases, [layers * 4, 1]. */
    public Tensor bias() {
        return bias;
    }

    public float bias(int layer, int channel) {
        return bias.get(4L * layer + channel);
    }

    @Override
    public void close() {
        weight.close();
        bias.close();
    }
}
