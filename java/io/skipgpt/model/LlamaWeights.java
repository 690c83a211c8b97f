package io.skipgpt.model;

import io.skipgpt.tensor.Tensor;
import java.util.List;

/**
 * All weights of a LLaMA, float32 in native memory, linear weights stored [out, in], Q and K rows in the
 * internal adjacent-pair RoPE convention (loaders of rotate-half checkpoints permute them on the way in).
 * {@code output} is the same tensor as {@code tokenEmbedding} when the head is tied.
 */
public record LlamaWeights(
        Tensor tokenEmbedding, // [vocab, dim]
        List<Layer> layers,
        Tensor outputNorm, // [dim]
        Tensor output) // [vocab, dim]
        implements AutoCloseable {

    /** One decoder block. */
    public record Layer(
            Tensor attnNorm, // [dim]
            Tensor wq, // [nHeads * headDim, dim]
            Tensor wk, // [nKvHeads * headDim, dim]
            Tensor wv, // [nKvHeads * headDim, dim]
            Tensor wo, // [dim, nHeads * headDim]
            Tensor ffnNorm, // [dim]
            Tensor wGate, // [hidden, dim]
            Tensor wUp, // [hidden, dim]
            Tensor wDown) { // [dim, hidden]

        List<Tensor> all() {
            return List.of(attnNorm, wq, wk, wv, wo, ffnNorm, wGate, wUp, wDown);
        }
    }

    public boolean tied() {
        return output == tokenEmbedding;
    }

    /** Allocates zero-filled weights of the config's shapes (loaders fill them; tests randomise them). */
    public static LlamaWeights allocate(LlamaConfig c) {
        int d = c.dim(), q = c.nHeads() * c.headDim(), kv = c.kvDim(), h = c.hiddenDim();
        Tensor embed = Tensor.f32(c.vocabSize(), d);
        List<Layer> layers = new java.util.ArrayList<>();
        for (int i = 0; i < c.nLayers(); i++) {
            layers.add(new Layer(Tensor.f32(d), Tensor.f32(q, d), Tensor.f32(kv, d), Tensor.f32(kv, d),
                    Tensor.f32(d, q), Tensor.f32(d), Tensor.f32(h, d), Tensor.f32(h, d), Tensor.f32(d, h)));
        }
        Tensor out = c.tiedEmbeddings() ? embed : Tensor.f32(c.vocabSize(), d);
        return new LlamaWeights(embed, List.copyOf(layers), Tensor.f32(d), out);
    }

    @Override
    public void close() {
        tokenEmbedding.close();
        for (Layer l : layers) l.all().forEach(Tensor::close);
        outputNorm.close();
        if (!tied()) output.close();
    }
}
