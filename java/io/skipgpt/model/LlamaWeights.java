package io.skipgpt.model;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import java.util.ArrayList;
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
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < c.nLayers(); i++) {
            layers.add(new Layer(Tensor.f32(d), Tensor.f32(q, d), Tensor.f32(kv, d), Tensor.f32(kv, d),
                    Tensor.f32(d, q), Tensor.f32(d), Tensor.f32(h, d), Tensor.f32(h, d), Tensor.f32(d, h)));
        }
        Tensor out = c.tiedEmbeddings() ? embed : Tensor.f32(c.vocabSize(), d);
        return new LlamaWeights(embed, List.copyOf(layers), Tensor.f32(d), out);
    }

    /**
     * A copy of these weights on a backend's device, owned by the caller (close it): every tensor uploaded once,
     * the tie kept. Projections and an untied head go through {@link Backend#uploadWeight}, so they are stored as
     * the backend's matmul prefers (bf16 on CUDA at bf16 precision); the embedding table, which a lookup reads, and
     * the norm weights stay fp32. On a host backend it is still a copy, so the caller owns and closes both alike.
     */
    public LlamaWeights uploadTo(Backend backend) {
        List<Tensor> made = new ArrayList<>();
        try {
            Tensor embed = up(backend, tokenEmbedding, false, made);
            List<Layer> ls = new ArrayList<>();
            for (Layer l : layers) {
                ls.add(new Layer(up(backend, l.attnNorm, false, made), up(backend, l.wq, true, made),
                        up(backend, l.wk, true, made), up(backend, l.wv, true, made), up(backend, l.wo, true, made),
                        up(backend, l.ffnNorm, false, made), up(backend, l.wGate, true, made),
                        up(backend, l.wUp, true, made), up(backend, l.wDown, true, made)));
            }
            Tensor out = tied() ? embed : up(backend, output, true, made);
            return new LlamaWeights(embed, List.copyOf(ls), up(backend, outputNorm, false, made), out);
        } catch (RuntimeException e) {
            made.forEach(Tensor::close);
            throw e;
        }
    }

    private static Tensor up(Backend backend, Tensor t, boolean matmulWeight, List<Tensor> made) {
        Tensor d = matmulWeight ? backend.uploadWeight(t) : backend.upload(t);
        made.add(d);
        return d;
    }

    @Override
    public void close() {
        tokenEmbedding.close();
        for (Layer l : layers) l.all().forEach(Tensor::close);
        outputNorm.close();
        if (!tied()) output.close();
    }
}
