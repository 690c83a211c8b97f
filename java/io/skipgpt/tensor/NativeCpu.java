package io.skipgpt.tensor;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Name;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * Mechanical JavaCPP binding of the CPU half of {@code native/include/skipgpt.h}; contracts and shapes are
 * documented there. No policy here: {@link CpuBackend} decides what to call.
 */
// skipgpt_env goes first: it sets the OpenMP wait policy before libgomp loads (native/cpu/omp_env.c).
@Platform(include = "skipgpt.h", preload = "skipgpt_env", link = "skipgpt_cpu")
final class NativeCpu {
    static {
        Loader.load();
    }

    private NativeCpu() {}

    @Name("sg_cpu_rmsnorm")
    static native void rmsnorm(FloatPointer out, FloatPointer x, FloatPointer w, int n, int d, float eps);

    @Name("sg_cpu_rope")
    static native void rope(FloatPointer x, IntPointer pos, int n, int nHeads, int headDim, float theta,
                            int rotateHalf);

    @Name("sg_cpu_attention")
    static native void attention(FloatPointer out, FloatPointer q, FloatPointer k, FloatPointer v, IntPointer pos,
                                 IntPointer kvStart, int n, int nHeads, int nKvHeads, int headDim);

    @Name("sg_cpu_swiglu")
    static native void swiglu(FloatPointer out, FloatPointer gate, FloatPointer up, long len);

    @Name("sg_cpu_softmax")
    static native void softmax(FloatPointer x, int n, int d);

    @Name("sg_cpu_embedding")
    static native void embedding(FloatPointer out, FloatPointer table, IntPointer ids, int n, int d);

    @Name("sg_cpu_gather_rows")
    static native void gatherRows(FloatPointer out, FloatPointer src, IntPointer idx, int count, int d);

    @Name("sg_cpu_scatter_add_rows")
    static native void scatterAddRows(FloatPointer dst, FloatPointer src, IntPointer idx, int count, int d);

    @Name("sg_cpu_scatter_rows")
    static native void scatterRows(FloatPointer dst, FloatPointer src, IntPointer idx, int count, int d);

    @Name("sg_cpu_add")
    static native void add(FloatPointer dst, FloatPointer src, long len);

    @Name("sg_cpu_cross_entropy")
    static native void crossEntropy(FloatPointer loss, FloatPointer logits, IntPointer targets, int n, int vocab);

    @Name("sg_cpu_row_dot")
    static native void rowDot(FloatPointer out, FloatPointer a, FloatPointer b, int n, int d);

    @Name("sg_cpu_scale_rows")
    static native void scaleRows(FloatPointer x, FloatPointer s, int n, int d);

    @Name("sg_cpu_rmsnorm_backward")
    static native void rmsnormBackward(FloatPointer dx, FloatPointer dw, FloatPointer dy, FloatPointer x,
                                       FloatPointer w, int n, int d, float eps);

    @Name("sg_cpu_rope_backward")
    static native void ropeBackward(FloatPointer dx, IntPointer pos, int n, int nHeads, int headDim, float theta,
                                    int rotateHalf);

    @Name("sg_cpu_attention_backward")
    static native void attentionBackward(FloatPointer dq, FloatPointer dk, FloatPointer dv, FloatPointer dout,
                                         FloatPointer q, FloatPointer k, FloatPointer v, IntPointer pos,
                                         int n, int nHeads, int nKvHeads, int headDim);

    @Name("sg_cpu_swiglu_backward")
    static native void swigluBackward(FloatPointer dgate, FloatPointer dup, FloatPointer dout, FloatPointer gate,
                                      FloatPointer up, long len);

    @Name("sg_cpu_cross_entropy_backward")
    static native void crossEntropyBackward(FloatPointer dlogits, FloatPointer logits, IntPointer targets,
                                            FloatPointer dloss, float scale, int n, int vocab);

    @Name("sg_cpu_lora_forward")
    static native void loraForward(FloatPointer out, FloatPointer x, FloatPointer a, FloatPointer b, int n, int k, int m,
                                   int r, float scale);

    @Name("sg_cpu_lora_backward")
    static native void loraBackward(FloatPointer dx, FloatPointer da, FloatPointer db, FloatPointer dy, FloatPointer x,
                                    FloatPointer a, FloatPointer b, int n, int k, int m, int r, float scale);

    @Name("sg_cpu_router_gates")
    static native void routerGates(FloatPointer gates, FloatPointer soft, FloatPointer z, FloatPointer bias, int n,
                                   double tau, int noise, @Cast("uint64_t") long key, @Cast("uint64_t") long offset,
                                   FloatPointer hardGates, FloatPointer hardSoft);

    @Name("sg_cpu_router_gates_backward")
    static native void routerGatesBackward(FloatPointer dz, FloatPointer dbias, FloatPointer dgates, FloatPointer soft,
                                           int n, float gateGrad, double tau);

    @Name("sg_cpu_adamw")
    static native void adamw(FloatPointer param, FloatPointer grad, FloatPointer m, FloatPointer v, long len,
                             double gradScale, double beta1, double beta2, double eps, double stepSize,
                             double sqrtCorrection2, double keep);

    @Name("sg_cpu_sum_squares")
    static native void sumSquares(DoublePointer acc, FloatPointer x, long len);

    @Name("sg_cpu_dropout_mask")
    static native void dropoutMask(FloatPointer mask, long len, double rate, @Cast("uint64_t") long key,
                                   @Cast("uint64_t") long offset);

    @Name("sg_gpu_probe")
    static native int gpuProbe(@Cast("char*") BytePointer msg, int msgLen);
}
