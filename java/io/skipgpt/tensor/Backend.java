package io.skipgpt.tensor;

import java.util.List;

/**
 * The op set a LLaMA needs, over float32 row-major {@link Tensor}s (int32 for ids, positions and indices; a
 * device backend may keep linear weights in bf16, see {@link #uploadWeight}).
 * Row counts come from the tensors' shapes: pass a {@link Tensor#rows(int, int)} view to work on fewer rows.
 * Outputs are written, never accumulated into, unless the op says "add". Shapes use n = rows.
 *
 * <p>Backward ops take the gradient of a forward op's output (dy, dOut) and produce the gradients of its inputs.
 * Gradients of activations are written; gradients that several rows or calls feed — weights (dw, dWeight) and
 * the KV cache (dk, dv) — are added into ("+="), so the caller zeroes them once per step. Some forward ops need
 * no backward op of their own:
 * <ul>
 *   <li>{@link #gatherRows} and {@link #scatterAddRows} are each other's backward (indices are distinct):
 *       for {@code gatherRows(out, src, idx)}, {@code scatterAddRows(dSrc, dOut, idx)} adds the gradient into
 *       dSrc; for {@code scatterAddRows(dst, src, idx)}, {@code gatherRows(dSrc, dDst, idx)} writes dSrc and dDst
 *       passes through unchanged, as it does through both sides of {@link #add}.</li>
 *   <li>{@link #scaleRows}: for {@code y = x * s} row by row, {@code ds = rowDot(dy, x)} (x as it was before
 *       scaling), then {@code dx = scaleRows(dy, s)} (in place on dy, or on a copy).</li>
 *   <li>{@link #rowDot}: for {@code out[i] = a_i · b_i}, {@code da = scaleRows(b, dOut)} on a copy of b, and
 *       db likewise.</li>
 *   <li>{@link #embedding} has none: the embedding table is frozen in both training stages.</li>
 * </ul>
 *
 * <p>Three implementations share this contract: {@link ReferenceBackend} (plain Java, the test oracle),
 * {@link CpuBackend} (native C++ kernels and OpenBLAS), and {@link CudaBackend} (CUDA kernels and cuBLAS).
 *
 * <p><b>Devices.</b> Every tensor an op takes must live on the backend's {@link #device()}; an op given another
 * device's tensor throws. Code written once against this interface makes its tensors with {@link #allocate} and
 * {@link #upload} and reads results back with {@link #download} or {@link #copy}: on a host backend these are
 * plain host tensors and copies. A device backend queues ops and returns before they finish; a copy to the
 * host waits for everything queued before it, so what it returns is final. Index values are checked on the
 * host only (see {@code OpChecks}): a device backend trusts its index tensors.
 */
public interface Backend extends AutoCloseable {
    String name();

    /** Where this backend's tensors live. */
    Device device();

    /** A zero-filled tensor on this backend's device, owned by the caller (close it). */
    Tensor allocate(Tensor.DType dtype, int... shape);

    /**
     * dst = src element for element: one dtype and the same number of elements (shapes may differ, as with
     * {@link Tensor#reshape}); each side a host tensor or one on this backend's device, so this uploads,
     * downloads, or copies on the device (BF16, which exists only on a device, is copied only there). Returns
     * once the host side may be reused (an upload's source) or read (a download's destination).
     */
    void copy(Tensor dst, Tensor src);

    /** A new tensor on this backend's device holding src's contents (src on the host or on this device). */
    default Tensor upload(Tensor src) {
        return filled(allocate(src.dtype(), src.shape()), src);
    }

    /** A new host tensor holding src's contents (src on the host or on this backend's device). */
    default Tensor download(Tensor src) {
        return filled(Tensor.zeros(src.dtype(), src.shape()), src);
    }

    // dst after copy(dst, src); a copy that fails closes dst, which the caller never sees.
    private Tensor filled(Tensor dst, Tensor src) {
        try {
            copy(dst, src);
        } catch (RuntimeException e) {
            dst.close();
            throw e;
        }
        return dst;
    }

    /**
     * A linear layer's weight w[out, in] (F32, on the host or this device) as a new tensor on this device, stored
     * as this backend's {@link #matmul} prefers: a plain {@link #upload} on host backends and on
     * {@link CudaBackend} at fp32 and tf32; bf16 ({@link Tensor.DType#BF16}) on {@link CudaBackend} at
     * {@link CudaBackend.Precision#BF16}. Use the result only as the w of matmul and matmulBackward (for dx: a bf16
     * weight is frozen), and keep the F32 original for anything else: a BF16 tensor cannot be downloaded.
     */
    default Tensor uploadWeight(Tensor w) {
        return upload(w);
    }

    /** out[n, m] = x[n, k] · w[m, k]ᵀ — a linear layer with weights stored [out, in]; w may be BF16 on a device. */
    void matmul(Tensor out, Tensor x, Tensor w);

    /** out[n, d] = x / sqrt(mean(x²) + eps) * weight[d]; out may be x. */
    void rmsnorm(Tensor out, Tensor x, Tensor weight, float eps);

    /** In place on x[n, heads * headDim]: rotary embedding of row i at position positions[i]. */
    void rope(Tensor x, Tensor positions, int headDim, float theta, RopeStyle style);

    /**
     * Causal grouped-query attention over a KV cache: out[n, nHeads * headDim] from q[n, nHeads * headDim]
     * and k, v[t, nKvHeads * headDim]; query i (at positions[i]) attends keys 0..positions[i]. Every one of the t
     * rows must hold finite values, even past the largest position: a backend may multiply them by zero weights
     * (the CUDA backend's bf16 attention does), and 0 times inf is NaN.
     */
    default void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor positions, int nHeads, int nKvHeads,
                           int headDim) {
        attention(out, q, k, v, positions, null, nHeads, nKvHeads, headDim);
    }

    /**
     * Attention of queries whose caches are slices of one k, v pair (the decode steps of a batch in one call):
     * query i attends cache rows keyStarts[i] .. keyStarts[i] + positions[i]. keyStarts[n] may be null, meaning
     * 0 for every query (the overload above).
     */
    void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor positions, Tensor keyStarts, int nHeads,
                   int nKvHeads, int headDim);

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

    /** dst[idx[i]] = src[i] for i < idx.size(); indices distinct (new keys and values into their caches). */
    void scatterRows(Tensor dst, Tensor src, Tensor idx);

    /** dst += src, elementwise. */
    void add(Tensor dst, Tensor src);

    /** loss[i] = logsumexp(logits[i]) - logits[i, targets[i]] for logits[n, vocab]. */
    void crossEntropy(Tensor loss, Tensor logits, Tensor targets);

    /** out[n] = Σ_j a[n, j]·b[n, j]: one dot product per row, e.g. a gate's gradient dL/dg_i = ⟨dh_i, f(x)_i⟩. */
    void rowDot(Tensor out, Tensor a, Tensor b);

    /** In place on x[n, d]: row i *= s[i] — masked-dense gating, a module's output times its gate. */
    void scaleRows(Tensor x, Tensor s);

    /**
     * Backward of {@link #matmul}, out[n, m] = x[n, k] · w[m, k]ᵀ, given dy[n, m]:
     * dx[n, k] = dy · w, written, or added into dx when {@code addToDx} (several projections read one input:
     * q, k and v of one normed row, gate and up of another); dw[m, k] += dyᵀ · x.
     * dx or dw may be null when that gradient is not wanted (frozen weights, an input that needs none); dw must be
     * null when w is BF16 (see {@link #uploadWeight}).
     */
    void matmulBackward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, boolean addToDx);

    /**
     * Backward of {@link #rmsnorm} over x[n, d], weight[d], dy[n, d], with r_i = 1 / sqrt(mean(x_i²) + eps):
     * dx[i, j] = r_i·weight[j]·dy[i, j] − x[i, j]·r_i³/d · Σ_k dy[i, k]·weight[k]·x[i, k], written;
     * dWeight[j] += Σ_i dy[i, j]·x[i, j]·r_i, unless dWeight is null. dx must not overlap dy or x.
     */
    void rmsnormBackward(Tensor dx, Tensor dWeight, Tensor dy, Tensor x, Tensor weight, float eps);

    /**
     * Backward of {@link #rope}, in place on dx[n, heads * headDim]: on entry the gradient of the rotated rows,
     * on exit that of the rows before rotation (each pair turned back by its angle). Same arguments as the forward.
     */
    void ropeBackward(Tensor dx, Tensor positions, int headDim, float theta, RopeStyle style);

    /**
     * Backward of {@link #attention} (same q, k, v, positions and heads), given dOut[n, nHeads * headDim].
     * The softmax rows are recomputed from q and k; the forward stores nothing. Per query i, head h:
     * P = softmax over keys t ≤ positions[i] of q·k_t/√headDim, dP_t = dOut·v_t, D = Σ_t P_t·dP_t, and
     * <ul>
     *   <li>dq[n, nHeads * headDim] = Σ_t P_t (dP_t − D) k_t / √headDim, written;</li>
     *   <li>dk[t, nKvHeads * headDim] += Σ_i P_t (dP_t − D) q_i / √headDim and dv[t, ...] += Σ_i P_t dOut_i,
     *       added into: every query, and every query head of a kv head's group, that sees key t feeds its row.
     *       Rows past max(positions) are left as they are.</li>
     * </ul>
     * No output may overlap any other argument.
     */
    void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                           Tensor positions, int nHeads, int nKvHeads, int headDim);

    /**
     * Backward of {@link #swiglu}: with σ = 1 / (1 + e^−gate), dGate = dOut·up·σ·(1 + gate·(1 − σ)) and
     * dUp = dOut·gate·σ, both written. Each may be one of the inputs (elementwise, read before written);
     * dGate and dUp must differ.
     */
    void swigluBackward(Tensor dGate, Tensor dUp, Tensor dOut, Tensor gate, Tensor up);

    /**
     * Backward of {@link #crossEntropy}: dLogits[i, j] = scale · c_i · (softmax(logits[i])[j] − [j = targets[i]]),
     * written, with c_i = dLoss[i] (the gradient of loss[i]; zero masks a row out) or 1 when dLoss is null.
     * scale = 1/n gives the gradient of the mean loss. dLogits may be logits.
     */
    void crossEntropyBackward(Tensor dLogits, Tensor logits, Tensor targets, Tensor dLoss, float scale);

    /**
     * A LoRA adapter's term, added into its base projection's output: out[n, m] += scale · (x[n, k] · a[r, k]ᵀ) ·
     * b[m, r]ᵀ, with the [n, r] intermediate never stored (rank r ≤ {@value OpChecks#MAX_LORA_RANK}).
     */
    void loraForward(Tensor out, Tensor x, Tensor a, Tensor b, float scale);

    /**
     * Backward of {@link #loraForward} given dy[n, m], with u = x·aᵀ and g = scale·dy·b (both [n, r]), all added
     * into: dx[n, k] += g·a (the adapter's share of the input gradient, after the base projection's
     * {@link #matmulBackward} wrote its own), dA[r, k] += gᵀ·x, dB[m, r] += scale·dyᵀ·u. No output may overlap
     * another argument.
     */
    void loraBackward(Tensor dx, Tensor dA, Tensor dB, Tensor dy, Tensor x, Tensor a, Tensor b, float scale);

    /**
     * SkipGPT's gates in training (masked-dense: every module runs, its output times its gate). From router
     * logits[n, 4] (per row: attention execute, attention skip, MLP execute, MLP skip) plus bias[4], added in float,
     * per row i and module j (0 attention, 1 MLP) with ze, zs the execute and skip logits:
     * a = (ze + Ge) − (zs + Gs) in double with Gumbel noise G = −log(−log u) drawn as {@code noise} says, or
     * a = ze − zs (in float) when noise is null; soft[j, i] = sigmoid(a / tau) and gates[j, i] = 1 if a > 0, else 0,
     * both [2, n] and written. Given hardGates [2, n] (another pass's gates) the gates are instead
     * hardGates + (soft − hardSoft) when hardSoft is given (the straight-through surrogate, whose gradient
     * {@link #routerGatesBackward} computes), else hardGates. Every backend draws the same uniforms for the same noise;
     * the logarithms and exponentials are each backend's, so soft values may differ in their last bit.
     */
    void routerGates(Tensor gates, Tensor soft, Tensor logits, Tensor bias, Philox noise, double tau,
                     Tensor hardGates, Tensor hardSoft);

    /**
     * Backward of {@link #routerGates} through the soft gates (straight-through), given dGates[2, n], the loss's
     * gradient in each gate, and gateGrad, added to every one of them (a penalty's): per row i and module j, with
     * s = soft[j, i], d = (dGates[j, i] + gateGrad)·s·(1 − s)/tau; dLogits[n, 4] gets d at [i, 2j] and −d at [i, 2j + 1]
     * (written), and dBias[k] += Σ_i dLogits[i, k] (dBias has 4 elements).
     */
    void routerGatesBackward(Tensor dLogits, Tensor dBias, Tensor dGates, Tensor soft, float gateGrad, double tau);

    /**
     * One AdamW step in place on param, from its gradient grad, with its moments m and v (four F32 tensors of one
     * shape): see {@link AdamUpdate} for the arithmetic, the same bits on every backend.
     */
    void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamUpdate update);

    /**
     * Σ x² over every element of the tensors, in double: the squared norm of a gradient split over tensors. The
     * value comes back to the host, so a device backend waits for the queued work (one copy, however many tensors).
     */
    double sumOfSquares(List<Tensor> xs);

    /**
     * A dropout mask, every element written: 0 with probability {@code rate} (in [0, 1)), else 1 / (1 − rate) in
     * float, so that x·mask keeps the expectation of x. Element i draws one uniform from {@code noise} at counter
     * (i, offset), the same bits on every backend.
     */
    void dropoutMask(Tensor mask, double rate, Philox noise);

    @Override
    default void close() {}
}
