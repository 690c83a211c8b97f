package io.skipgpt.tensor;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.ShortPointer;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Name;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * Mechanical JavaCPP binding of the CUDA half of {@code native/include/skipgpt.h} (the ops {@link Backend} has);
 * contracts and shapes are documented there. Every pointer is a device address and {@code stream} a
 * {@code cudaStream_t}; each call only enqueues work. No policy here: {@link CudaBackend} decides what to call,
 * and loads the CUDA runtime (through the CUDA presets) before this class, since libskipgpt_cuda needs it.
 * The JNI glue, libjniNativeCuda, is built only where CMake finds nvcc (cmake/SkipgptJni.cmake).
 */
@Platform(include = "skipgpt.h", link = "skipgpt_cuda")
final class NativeCuda {
    static {
        Loader.load();
    }

    private NativeCuda() {}

    @Name("sg_cuda_f32_to_bf16")
    static native void f32ToBf16(@Cast("uint16_t*") ShortPointer out, FloatPointer x, long len, Pointer stream);

    @Name("sg_cuda_attention_probs_bf16")
    static native void attentionProbsBf16(@Cast("uint16_t*") ShortPointer p, FloatPointer s, IntPointer pos, int rows,
                                          int heads, int t, Pointer stream);

    @Name("sg_cuda_rmsnorm")
    static native void rmsnorm(FloatPointer out, FloatPointer x, FloatPointer w, int n, int d, float eps,
                               Pointer stream);

    @Name("sg_cuda_rope")
    static native void rope(FloatPointer x, IntPointer pos, int n, int nHeads, int headDim, float theta,
                            int rotateHalf, Pointer stream);

    @Name("sg_cuda_attention")
    static native void attention(FloatPointer out, FloatPointer q, FloatPointer k, FloatPointer v, IntPointer pos,
                                 IntPointer kvStart, int n, int nHeads, int nKvHeads, int headDim, Pointer stream);

    @Name("sg_cuda_swiglu")
    static native void swiglu(FloatPointer out, FloatPointer gate, FloatPointer up, long len, Pointer stream);

    @Name("sg_cuda_softmax")
    static native void softmax(FloatPointer x, int n, int d, Pointer stream);

    @Name("sg_cuda_embedding")
    static native void embedding(FloatPointer out, FloatPointer table, IntPointer ids, int n, int d, Pointer stream);

    @Name("sg_cuda_gather_rows")
    static native void gatherRows(FloatPointer out, FloatPointer src, IntPointer idx, int count, int d,
                                  Pointer stream);

    @Name("sg_cuda_scatter_add_rows")
    static native void scatterAddRows(FloatPointer dst, FloatPointer src, IntPointer idx, int count, int d,
                                      Pointer stream);

    @Name("sg_cuda_scatter_rows")
    static native void scatterRows(FloatPointer dst, FloatPointer src, IntPointer idx, int count, int d,
                                   Pointer stream);

    @Name("sg_cuda_add")
    static native void add(FloatPointer dst, FloatPointer src, long len, Pointer stream);

    @Name("sg_cuda_cross_entropy")
    static native void crossEntropy(FloatPointer loss, FloatPointer logits, IntPointer targets, int n, int vocab,
                                    Pointer stream);

    @Name("sg_cuda_row_dot")
    static native void rowDot(FloatPointer out, FloatPointer a, FloatPointer b, int n, int d, Pointer stream);

    @Name("sg_cuda_scale_rows")
    static native void scaleRows(FloatPointer x, FloatPointer s, int n, int d, Pointer stream);

    @Name("sg_cuda_rmsnorm_backward")
    static native void rmsnormBackward(FloatPointer dx, FloatPointer dw, FloatPointer dy, FloatPointer x,
                                       FloatPointer w, int n, int d, float eps, Pointer stream);

    @Name("sg_cuda_rope_backward")
    static native void ropeBackward(FloatPointer dx, IntPointer pos, int n, int nHeads, int headDim, float theta,
                                    int rotateHalf, Pointer stream);

    @Name("sg_cuda_attention_backward")
    static native void attentionBackward(FloatPointer dq, FloatPointer dk, FloatPointer dv, FloatPointer dout,
                                         FloatPointer q, FloatPointer k, FloatPointer v, IntPointer pos,
                                         int n, int nHeads, int nKvHeads, int headDim, Pointer stream);

    @Name("sg_cuda_swiglu_backward")
    static native void swigluBackward(FloatPointer dgate, FloatPointer dup, FloatPointer dout, FloatPointer gate,
                                      FloatPointer up, long len, Pointer stream);

    @Name("sg_cuda_cross_entropy_backward")
    static native void crossEntropyBackward(FloatPointer dlogits, FloatPointer logits, IntPointer targets,
                                            FloatPointer dloss, float scale, int n, int vocab, Pointer stream);

    @Name("sg_cuda_lora_forward")
    static native void loraForward(FloatPointer out, FloatPointer x, FloatPointer a, FloatPointer b, int n, int k, int m,
                                   int r, float scale, Pointer stream);

    @Name("sg_cuda_lora_backward")
    static native void loraBackward(FloatPointer dx, FloatPointer da, FloatPointer db, FloatPointer dy, FloatPointer x,
                                    FloatPointer a, FloatPointer b, int n, int k, int m, int r, float scale,
                                    Pointer stream);

    @Name("sg_cuda_router_gates")
    static native void routerGates(FloatPointer gates, FloatPointer soft, FloatPointer z, FloatPointer bias, int n,
                                   double tau, int noise, @Cast("uint64_t") long key, @Cast("uint64_t") long offset,
                                   FloatPointer hardGates, FloatPointer hardSoft, Pointer stream);

    @Name("sg_cuda_router_gates_backward")
    static native void routerGatesBackward(FloatPointer dz, FloatPointer dbias, FloatPointer dgates, FloatPointer soft,
                                           int n, float gateGrad, double tau, Pointer stream);

    @Name("sg_cuda_adamw")
    static native void adamw(FloatPointer param, FloatPointer grad, FloatPointer m, FloatPointer v, long len,
                             double gradScale, double beta1, double beta2, double eps, double stepSize,
                             double sqrtCorrection2, double keep, Pointer stream);

    @Name("sg_cuda_sum_squares")
    static native void sumSquares(DoublePointer acc, FloatPointer x, long len, Pointer stream);

    @Name("sg_cuda_dropout_mask")
    static native void dropoutMask(FloatPointer mask, long len, double rate, @Cast("uint64_t") long key,
                                   @Cast("uint64_t") long offset, Pointer stream);
}
