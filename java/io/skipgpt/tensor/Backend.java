package io.skipgpt.tensor;

/**
 * The op set a LLaMA needs, over float32 row-major {@link Tensor}s (int32 for ids, positions and indices).
 * Row counts come from the tensors' shapes: pass a {@link Tensor#rows(int, int)} view to work on fewer rows.
 * Outputs are written, never accumulated into, unless the op says "add". Shapes use n = rows.
 *
 * <p>Three implementations share this contract: {@link ReferenceBackend} (plain Java, the test oracle),
 * {@link CpuBackend} (native C++ kernels and OpenBLAS), and a CUDA backend.
 */
public interface Backend extends AutoCloseable {
    String name();

    /** out[n, m] = x[n, k] · w[m, k]ᵀ — a linear layer with weights stored [out, in]. */
    void matmul(Tensor out, Tensor x, Tensor w);

    /** out[n, d] = x / sqrt(mean(x²) + eps) * weight[d]; out may be x. */
    void rmsnorm(Tensor out, Tensor x, Tensor weight, float eps);

    /** In place on x[n, heads * headDim]: rotary embedding of row i at position positions[i]. */
    void rope(Tensor x, Tensor positions, int headDim, float theta, RopeStyle style);

    /**
     * Causal grouped-query attention over a KV cache: out[n, nHeads * headDim] from q[n, nHeads * headDim]
     * and k, v[t, nKvHeads * headDim]; query i (at positions[i]) attends keys 0..positions[i].
     */
    void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor positions, int nHeads, int nKvHeads, int headDim);

    /** out = silu(gate) * up, elementwise; out may be gate. */
    void swiglu(Tensor out, Tensor gate, Tensor up);

    /** Row softmax of x[n, d], in place. */
    void softmax(Tensor x);

    /** out[n, d] = table[ids[i]]. */
    void embedding(Tensor out, Tensor table, Tensor ids);

    /** out[count, d] = src[idx[i]] with count = idx.size(). */
    void gatherRows(Tensor out, Tensor src, Tensor idx);

    /** dst[idx[i]] += src[i] for i < idx.size(); indices distinct. */
    void scatterAddRows(Tensor dst, Tensor src, Tensor idx);

    /** dst += src, elementwise. */
    void add(Tensor dst, Tensor src);

    /** loss[i] = logsumexp(logits[i]) - logits[i, targets[i]] for logits[n, vocab]. */
    void crossEntropy(Tensor loss, Tensor logits, Tensor targets);

    @Override
    default void close() {}
}
