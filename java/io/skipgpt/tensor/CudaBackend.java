package io.skipgpt.tensor;

import static org.bytedeco.cuda.global.cublas.CUBLAS_COMPUTE_32F;
import static org.bytedeco.cuda.global.cublas.CUBLAS_DEFAULT_MATH;
import static org.bytedeco.cuda.global.cublas.CUBLAS_GEMM_DEFAULT;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_N;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_T;
import static org.bytedeco.cuda.global.cublas.CUBLAS_STATUS_SUCCESS;
import static org.bytedeco.cuda.global.cublas.CUBLAS_TF32_TENSOR_OP_MATH;
import static org.bytedeco.cuda.global.cublas.cublasCreate_v2;
import static org.bytedeco.cuda.global.cublas.cublasDestroy_v2;
import static org.bytedeco.cuda.global.cublas.cublasGemmEx;
import static org.bytedeco.cuda.global.cublas.cublasGemmStridedBatchedEx;
import static org.bytedeco.cuda.global.cublas.cublasGetStatusString;
import static org.bytedeco.cuda.global.cublas.cublasSetMathMode;
import static org.bytedeco.cuda.global.cublas.cublasSetStream_v2;
import static org.bytedeco.cuda.global.cublas.cublasSetWorkspace_v2;
import static org.bytedeco.cuda.global.cublas.cublasSgemm_v2;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16BF;
import static org.bytedeco.cuda.global.cudart.CUDA_R_32F;
import static org.bytedeco.cuda.global.cudart.cudaDevAttrMemoryPoolsSupported;
import static org.bytedeco.cuda.global.cudart.cudaDeviceGetAttribute;
import static org.bytedeco.cuda.global.cudart.cudaDeviceGetDefaultMemPool;
import static org.bytedeco.cuda.global.cudart.cudaFree;
import static org.bytedeco.cuda.global.cudart.cudaFreeAsync;
import static org.bytedeco.cuda.global.cudart.cudaGetErrorString;
import static org.bytedeco.cuda.global.cudart.cudaGetLastError;
import static org.bytedeco.cuda.global.cudart.cudaMalloc;
import static org.bytedeco.cuda.global.cudart.cudaMallocAsync;
import static org.bytedeco.cuda.global.cudart.cudaMemPoolAttrReleaseThreshold;
import static org.bytedeco.cuda.global.cudart.cudaMemPoolSetAttribute;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyAsync;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToDevice;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToHost;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyHostToDevice;
import static org.bytedeco.cuda.global.cudart.cudaMemsetAsync;
import static org.bytedeco.cuda.global.cudart.cudaSetDevice;
import static org.bytedeco.cuda.global.cudart.cudaStreamCreateWithFlags;
import static org.bytedeco.cuda.global.cudart.cudaStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cudaStreamNonBlocking;
import static org.bytedeco.cuda.global.cudart.cudaStreamSynchronize;
import static org.bytedeco.cuda.global.cudart.cudaSuccess;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.CUmemPoolHandle_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * The op set on an NVIDIA GPU (device 0): the CUDA kernels of {@code native/cuda} through {@link NativeCuda}, and
 * matmul and its backward through cuBLAS, reached through the JavaCPP CUDA presets. Only CUDA 13.0 APIs are
 * called (the presets were built for 13.1; a function newer than the installed runtime would kill the JVM).
 *
 * <p><b>Tensors.</b> Every op takes {@link Device#CUDA} tensors made by this backend ({@link #allocate},
 * {@link #upload}); host tensors are rejected. Shapes, dtypes and overlaps are checked in Java as on the CPU;
 * index values (ids, positions, indices) are not, since they live in device memory (see {@code OpChecks}).
 *
 * <p><b>Streams and errors.</b> One non-blocking stream per backend carries every kernel, cuBLAS call and copy, in
 * the order of the calls; an op returns once its work is queued. A copy to the host waits for the stream, so its
 * result is final. Launch errors are thrown by the op that caused them; errors that happen while a kernel runs
 * (a bad index, say) surface at the next copy to the host, as an {@link IllegalStateException} naming the CUDA
 * error. One backend is meant for one thread at a time.
 *
 * <p><b>Memory.</b> Tensors come stream-ordered from the device's default memory pool
 * ({@code cudaMallocAsync}/{@code cudaFreeAsync}), which this backend tells to keep freed memory (release
 * threshold: unlimited), so a loop that frees and allocates the same sizes costs no device allocation after its
 * first pass. Ops allocate nothing in a steady state: cuBLAS gets one {@value #WORKSPACE_BYTES}-byte workspace at
 * start (the size NVIDIA recommends for Hopper), {@link #sumOfSquares} one double for its sum, the attention
 * kernels keep their split-key scratch in a private pool of their own, and the bf16 GEMMs and the bf16 attention
 * keep their operands in scratch tensors that grow to the largest size seen and are kept. Closing the backend frees
 * every tensor it allocated that is still open (closing such a tensor afterwards does nothing).
 *
 * <p><b>Precision.</b> {@link Precision#FP32}, the default, is the exact path: cuBLAS {@code cublasSgemm} in its
 * default math mode, fp32 inputs, products and sums on the CUDA cores (about 1e-5 relative, like the CPU backend;
 * summation order differs). {@link Precision#TF32} lets cuBLAS round the GEMM inputs to TF32 (10-bit mantissa) on
 * the tensor cores with fp32 accumulation ({@code CUBLAS_TF32_TENSOR_OP_MATH}): several times faster on large
 * GEMMs, about 1e-3 relative. {@link Precision#BF16} is the fast path: {@link #uploadWeight} stores a linear
 * layer's weight in bf16 (rounded to nearest even on the device; half the bytes, which is what bounds decode), and
 * matmul against such a weight rounds x to bf16 too, then runs {@code cublasGemmEx} on bf16 inputs with fp32
 * accumulation and fp32 output on the tensor cores: about 1e-2 relative (bf16 keeps 8 significant bits), growing
 * like sqrt(k). matmulBackward gives dx through a bf16 weight the same way (dy rounded to bf16); a bf16 weight is
 * frozen, so its dw is refused. At BF16 the GEMMs on fp32 weights (weights not made by uploadWeight, and every dw)
 * run as at TF32: the mode is for speed, and an exact fp32 GEMM beside bf16 ones would be the slowest op.
 *
 * <p>At BF16, attention over {@value #GEMM_ATTENTION_MIN_ROWS} or more queries (a prefill) runs on the tensor cores
 * as well, as two GEMMs ({@link #gemmAttention}): q, k and v rounded to bf16, the scores q·kᵀ / sqrt(headDim) of
 * every key into fp32, a causal softmax into bf16 probabilities, their product with v into fp32. It computes the
 * scores of keys a query does not see and masks them after (twice the causal FLOPs of the fp32 kernel, on units
 * an order of magnitude faster) in chunks of queries whose scores take at most {@value #SCORES_BYTES} bytes. The
 * probabilities keep 8 significant bits: about 1e-2 relative, like the bf16 GEMMs. Decode steps, calls with
 * per-query cache starts and attention's backward stay on the fp32 kernels, as does every other kernel of
 * {@code native/cuda}. Training at BF16 therefore takes the gradient of the fp32 attention at the bf16 forward's
 * inputs, which differs from the gradient of the forward it ran by about 1e-2 relative: the order of what the
 * bf16 GEMMs already cost dx there (training at FP32 or TF32 keeps forward and backward consistent).
 */
public final class CudaBackend implements Backend {
    /** How cuBLAS computes matmul and matmulBackward, and how {@link #uploadWeight} stores (see the class comment). */
    public enum Precision {
        FP32, TF32, BF16
    }

    private static final OpChecks CHECK = new OpChecks(Device.CUDA);
    private static final long WORKSPACE_BYTES = 32L << 20;
    /** Queries from which attention at BF16 runs as GEMMs; fewer leave the tensor cores idle (see the class comment). */
    static final int GEMM_ATTENTION_MIN_ROWS = 64;
    /** The most memory the fp32 scores of one chunk of queries take in the BF16 attention, by default. */
    static final long SCORES_BYTES = 256L << 20;

    /** Scratch tensors, each [capacity, 1], grown when a larger one is asked for and kept (see the class comment). */
    private enum Scratch {
        /** the activation operand of a bf16 GEMM */
        GEMM_OPERAND,
        /** the bf16 attention's q, k, v rounded to bf16; its fp32 scores and bf16 probabilities */
        ATTENTION_Q, ATTENTION_K, ATTENTION_V, ATTENTION_SCORES, ATTENTION_PROBS
    }

    private final Precision precision;
    /** The bf16 attention's budget for one chunk's scores: {@link #SCORES_BYTES} but in tests of the chunking. */
    private final long scoresBytes;
    private final CUstream_st stream = new CUstream_st();
    private final cublasContext blas = new cublasContext();
    private final Pointer workspace = new Pointer();
    /** Host scalars for cuBLAS's alpha and beta (pointer mode host, read when the call is made). */
    private final FloatPointer one = new FloatPointer(1f), zero = new FloatPointer(0f), scoreScale = new FloatPointer(1);
    /** {@link #sumOfSquares}' accumulator: one double on the device, and where it comes back to. */
    private final DoublePointer squares = new DoublePointer();
    private final DoublePointer squaresOnHost = new DoublePointer(1);
    /** Device memory of every tensor allocated here and not yet closed. */
    private final Set<Pointer> live = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Tensor[] scratch = new Tensor[Scratch.values().length];
    private boolean streamCreated, blasCreated, closed;

    /**
     * Loads the CUDA runtime, cuBLAS and the project's CUDA kernels, then opens a backend on device 0, or throws an
     * {@link IllegalStateException} saying why it cannot (the libraries do not load, the device does not start).
     * Call it only where {@link GpuProbe} found a device: without an NVIDIA driver the CUDA libraries cannot load.
     */
    public static Backend open(Precision precision) {
        return open(precision, SCORES_BYTES);
    }

    /** As {@link #open(Precision)}, with another budget for the bf16 attention's scores (tests cut it small). */
    static Backend open(Precision precision, long scoresBytes) {
        loadLibraries();
        return new CudaBackend(precision, scoresBytes);
    }

    private static void loadLibraries() {
        try {
            Loader.load(cudart.class);
            Loader.load(cublas.class);
            Loader.load(NativeCuda.class);
        } catch (LinkageError | RuntimeException e) {
            String why = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
            throw new IllegalStateException("the CUDA libraries could not be loaded (" + e.getClass().getSimpleName()
                    + ": " + why + ")", e);
        }
    }

    private CudaBackend(Precision precision, long scoresBytes) {
        this.precision = precision;
        this.scoresBytes = scoresBytes;
        try {
            cuda(cudaSetDevice(0), "cudaSetDevice(0)");
            int[] pools = {0};
            cuda(cudaDeviceGetAttribute(pools, cudaDevAttrMemoryPoolsSupported, 0), "cudaDeviceGetAttribute");
            if (pools[0] == 0) throw new IllegalStateException("CUDA device 0 does not support memory pools");
            cuda(cudaStreamCreateWithFlags(stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
            streamCreated = true;
            CUmemPoolHandle_st pool = new CUmemPoolHandle_st();
            cuda(cudaDeviceGetDefaultMemPool(pool, 0), "cudaDeviceGetDefaultMemPool");
            try (LongPointer keepAll = new LongPointer(1).put(-1L)) { // UINT64_MAX: never give memory back
                cuda(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, keepAll), "cudaMemPoolSetAttribute");
            }
            cuda(cudaMalloc(workspace, WORKSPACE_BYTES), "cudaMalloc of the cuBLAS workspace");
            cuda(cudaMalloc(squares, Double.BYTES), "cudaMalloc of the sum-of-squares accumulator");
            blas(cublasCreate_v2(blas), "cublasCreate");
            blasCreated = true;
            blas(cublasSetStream_v2(blas, stream), "cublasSetStream");
            blas(cublasSetWorkspace_v2(blas, workspace, WORKSPACE_BYTES), "cublasSetWorkspace");
            blas(cublasSetMathMode(blas, precision == Precision.FP32 ? CUBLAS_DEFAULT_MATH : CUBLAS_TF32_TENSOR_OP_MATH),
                    "cublasSetMathMode");
        } catch (RuntimeException e) {
            release();
            throw e;
        }
    }

    @Override
    public String name() {
        return switch (precision) {
            case FP32 -> "cuda";
            case TF32 -> "cuda-tf32";
            case BF16 -> "cuda-bf16";
        };
    }

    @Override
    public Device device() {
        return Device.CUDA;
    }

    /** Device tensors allocated here and not yet closed (what {@link #close} would free). */
    synchronized int liveTensors() {
        return live.size();
    }

    @Override
    public Tensor allocate(Tensor.DType dtype, int... shape) {
        Tensor t = uninitialised(dtype, shape);
        zero(t);
        return t;
    }

    @Override
    public void copy(Tensor dst, Tensor src) {
        CHECK.copy(dst, src);
        if (dst.size() == 0) return;
        boolean toHost = dst.device() == Device.CPU, fromHost = src.device() == Device.CPU;
        if (toHost && fromHost) {
            dst.copyFrom(src);
            return;
        }
        int kind = toHost ? cudaMemcpyDeviceToHost : fromHost ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice;
        // From pageable host memory the copy returns once the source is staged, so the caller may reuse it.
        cuda(cudaMemcpyAsync(dst.bytePointer(), src.bytePointer(), dst.bytes(), kind, stream()), "cudaMemcpyAsync");
        if (toHost) cuda(cudaStreamSynchronize(stream()), "a queued op or the copy to the host");
    }

    /** At {@link Precision#BF16}: w rounded to bf16 on the device (from a temporary fp32 copy when w is on the host). */
    @Override
    public Tensor uploadWeight(Tensor w) {
        if (precision != Precision.BF16) return upload(w);
        CHECK.uploadWeight(w);
        Tensor stored = uninitialised(Tensor.DType.BF16, w.shape());
        try (Tensor staged = w.device() == Device.CPU ? upload(w) : null) {
            NativeCuda.f32ToBf16(stored.bf16Pointer(), (staged == null ? w : staged).floatPointer(), w.size(), stream());
            launched("uploadWeight (f32 to bf16)");
        } catch (RuntimeException e) {
            stored.close();
            throw e;
        }
        return stored;
    }

    /** out[n, m] = x[n, k] · w[m, k]ᵀ (see {@link #gemm} for the row-major to column-major mapping). */
    @Override
    public void matmul(Tensor out, Tensor x, Tensor w) {
        CHECK.matmul(out, x, w);
        int n = x.rows(), k = x.cols(), m = w.rows();
        if (n == 0 || m == 0) return;
        if (k == 0) {
            zero(out); // an empty sum
            return;
        }
        // outᵀ[m, n] = w[m, k] · xᵀ[k, n]
        gemm("matmul", CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, w, k, x, k, zero, out, m);
    }

    @Override
    public void rmsnorm(Tensor out, Tensor x, Tensor weight, float eps) {
        CHECK.rmsnorm(out, x, weight);
        NativeCuda.rmsnorm(out.floatPointer(), x.floatPointer(), weight.floatPointer(), x.rows(), x.cols(), eps,
                stream());
        launched("rmsnorm");
    }

    @Override
    public void rope(Tensor x, Tensor positions, int headDim, float theta, RopeStyle style) {
        CHECK.rope(x, positions, headDim, theta);
        NativeCuda.rope(x.floatPointer(), positions.intPointer(), x.rows(), x.cols() / headDim, headDim, theta,
                style == RopeStyle.ROTATE_HALF ? 1 : 0, stream());
        launched("rope");
    }

    @Override
    public void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor positions, Tensor keyStarts,
                          int nHeads, int nKvHeads, int headDim) {
        CHECK.attention(out, q, k, v, positions, keyStarts, nHeads, nKvHeads, headDim);
        if (precision == Precision.BF16 && keyStarts == null && q.rows() >= GEMM_ATTENTION_MIN_ROWS) {
            gemmAttention(out, q, k, v, positions, nHeads, nKvHeads, headDim);
            return;
        }
        NativeCuda.attention(out.floatPointer(), q.floatPointer(), k.floatPointer(), v.floatPointer(),
                positions.intPointer(), keyStarts == null ? null : keyStarts.intPointer(), q.rows(), nHeads, nKvHeads,
                headDim, stream());
        launched("attention");
    }

    @Override
    public void swiglu(Tensor out, Tensor gate, Tensor up) {
        CHECK.swiglu(out, gate, up);
        NativeCuda.swiglu(out.floatPointer(), gate.floatPointer(), up.floatPointer(), out.size(), stream());
        launched("swiglu");
    }

    @Override
    public void softmax(Tensor x) {
        CHECK.softmax(x);
        NativeCuda.softmax(x.floatPointer(), x.rows(), x.cols(), stream());
        launched("softmax");
    }

    @Override
    public void embedding(Tensor out, Tensor table, Tensor ids) {
        CHECK.embedding(out, table, ids);
        NativeCuda.embedding(out.floatPointer(), table.floatPointer(), ids.intPointer(), out.rows(), out.cols(),
                stream());
        launched("embedding");
    }

    @Override
    public void gatherRows(Tensor out, Tensor src, Tensor idx) {
        CHECK.gatherRows(out, src, idx);
        NativeCuda.gatherRows(out.floatPointer(), src.floatPointer(), idx.intPointer(), out.rows(), out.cols(),
                stream());
        launched("gatherRows");
    }

    @Override
    public void scatterAddRows(Tensor dst, Tensor src, Tensor idx) {
        CHECK.scatterAddRows(dst, src, idx);
        NativeCuda.scatterAddRows(dst.floatPointer(), src.floatPointer(), idx.intPointer(), src.rows(), src.cols(),
                stream());
        launched("scatterAddRows");
    }

    @Override
    public void scatterRows(Tensor dst, Tensor src, Tensor idx) {
        CHECK.scatterRows(dst, src, idx);
        NativeCuda.scatterRows(dst.floatPointer(), src.floatPointer(), idx.intPointer(), src.rows(), src.cols(),
                stream());
        launched("scatterRows");
    }

    @Override
    public void add(Tensor dst, Tensor src) {
        CHECK.add(dst, src);
        NativeCuda.add(dst.floatPointer(), src.floatPointer(), dst.size(), stream());
        launched("add");
    }

    @Override
    public void crossEntropy(Tensor loss, Tensor logits, Tensor targets) {
        CHECK.crossEntropy(loss, logits, targets);
        NativeCuda.crossEntropy(loss.floatPointer(), logits.floatPointer(), targets.intPointer(), logits.rows(),
                logits.cols(), stream());
        launched("crossEntropy");
    }

    @Override
    public void rowDot(Tensor out, Tensor a, Tensor b) {
        CHECK.rowDot(out, a, b);
        NativeCuda.rowDot(out.floatPointer(), a.floatPointer(), b.floatPointer(), a.rows(), a.cols(), stream());
        launched("rowDot");
    }

    @Override
    public void scaleRows(Tensor x, Tensor s) {
        CHECK.scaleRows(x, s);
        NativeCuda.scaleRows(x.floatPointer(), s.floatPointer(), x.rows(), x.cols(), stream());
        launched("scaleRows");
    }

    /** dx[n, k] = dy[n, m] · w[m, k] (beta 1 when adding) and dw[m, k] += dy[n, m]ᵀ · x[n, k], both cuBLAS GEMMs. */
    @Override
    public void matmulBackward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, boolean addToDx) {
        CHECK.matmulBackward(dx, dw, dy, x, w);
        int n = x.rows(), k = x.cols(), m = w.rows();
        if (n == 0 || k == 0) return;
        if (dx != null) {
            if (m == 0) {
                if (!addToDx) zero(dx); // an empty sum
            } else {
                // dxᵀ[k, n] = wᵀ[k, m] · dyᵀ[m, n]
                gemm("matmulBackward", CUBLAS_OP_N, CUBLAS_OP_N, k, n, m, w, k, dy, m, addToDx ? one : zero, dx, k);
            }
        }
        if (dw != null && m > 0) {
            // dwᵀ[k, m] += xᵀ[k, n] · dy[n, m]
            gemm("matmulBackward", CUBLAS_OP_N, CUBLAS_OP_T, k, m, n, x, k, dy, m, one, dw, k);
        }
    }

    @Override
    public void rmsnormBackward(Tensor dx, Tensor dWeight, Tensor dy, Tensor x, Tensor weight, float eps) {
        CHECK.rmsnormBackward(dx, dWeight, dy, x, weight);
        NativeCuda.rmsnormBackward(dx.floatPointer(), dWeight == null ? null : dWeight.floatPointer(), dy.floatPointer(),
                x.floatPointer(), weight.floatPointer(), x.rows(), x.cols(), eps, stream());
        launched("rmsnormBackward");
    }

    @Override
    public void ropeBackward(Tensor dx, Tensor positions, int headDim, float theta, RopeStyle style) {
        CHECK.ropeBackward(dx, positions, headDim, theta);
        NativeCuda.ropeBackward(dx.floatPointer(), positions.intPointer(), dx.rows(), dx.cols() / headDim, headDim,
                theta, style == RopeStyle.ROTATE_HALF ? 1 : 0, stream());
        launched("ropeBackward");
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                  Tensor positions, int nHeads, int nKvHeads, int headDim) {
        CHECK.attentionBackward(dq, dk, dv, dOut, q, k, v, positions, nHeads, nKvHeads, headDim);
        NativeCuda.attentionBackward(dq.floatPointer(), dk.floatPointer(), dv.floatPointer(), dOut.floatPointer(),
                q.floatPointer(), k.floatPointer(), v.floatPointer(), positions.intPointer(), q.rows(), nHeads,
                nKvHeads, headDim, stream());
        launched("attentionBackward");
    }

    @Override
    public void swigluBackward(Tensor dGate, Tensor dUp, Tensor dOut, Tensor gate, Tensor up) {
        CHECK.swigluBackward(dGate, dUp, dOut, gate, up);
        NativeCuda.swigluBackward(dGate.floatPointer(), dUp.floatPointer(), dOut.floatPointer(), gate.floatPointer(),
                up.floatPointer(), dOut.size(), stream());
        launched("swigluBackward");
    }

    @Override
    public void crossEntropyBackward(Tensor dLogits, Tensor logits, Tensor targets, Tensor dLoss, float scale) {
        CHECK.crossEntropyBackward(dLogits, logits, targets, dLoss);
        NativeCuda.crossEntropyBackward(dLogits.floatPointer(), logits.floatPointer(), targets.intPointer(),
                dLoss == null ? null : dLoss.floatPointer(), scale, logits.rows(), logits.cols(), stream());
        launched("crossEntropyBackward");
    }

    @Override
    public void loraForward(Tensor out, Tensor x, Tensor a, Tensor b, float scale) {
        CHECK.loraForward(out, x, a, b);
        NativeCuda.loraForward(out.floatPointer(), x.floatPointer(), a.floatPointer(), b.floatPointer(), x.rows(), x.cols(),
                b.rows(), a.rows(), scale, stream());
        launched("loraForward");
    }

    @Override
    public void loraBackward(Tensor dx, Tensor dA, Tensor dB, Tensor dy, Tensor x, Tensor a, Tensor b, float scale) {
        CHECK.loraBackward(dx, dA, dB, dy, x, a, b);
        NativeCuda.loraBackward(dx.floatPointer(), dA.floatPointer(), dB.floatPointer(), dy.floatPointer(), x.floatPointer(),
                a.floatPointer(), b.floatPointer(), x.rows(), x.cols(), b.rows(), a.rows(), scale, stream());
        launched("loraBackward");
    }

    @Override
    public void routerGates(Tensor gates, Tensor soft, Tensor logits, Tensor bias, Philox noise, double tau,
                            Tensor hardGates, Tensor hardSoft) {
        CHECK.routerGates(gates, soft, logits, bias, tau, hardGates, hardSoft);
        NativeCuda.routerGates(gates.floatPointer(), soft.floatPointer(), logits.floatPointer(), bias.floatPointer(),
                logits.rows(), tau, noise == null ? 0 : 1, noise == null ? 0 : noise.key(),
                noise == null ? 0 : noise.offset(), hardGates == null ? null : hardGates.floatPointer(),
                hardSoft == null ? null : hardSoft.floatPointer(), stream());
        launched("routerGates");
    }

    @Override
    public void routerGatesBackward(Tensor dLogits, Tensor dBias, Tensor dGates, Tensor soft, float gateGrad, double tau) {
        CHECK.routerGatesBackward(dLogits, dBias, dGates, soft, tau);
        NativeCuda.routerGatesBackward(dLogits.floatPointer(), dBias.floatPointer(), dGates.floatPointer(),
                soft.floatPointer(), dLogits.rows(), gateGrad, tau, stream());
        launched("routerGatesBackward");
    }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamUpdate u) {
        CHECK.adamw(param, grad, m, v);
        NativeCuda.adamw(param.floatPointer(), grad.floatPointer(), m.floatPointer(), v.floatPointer(), param.size(),
                u.gradScale(), u.beta1(), u.beta2(), u.eps(), u.stepSize(), u.sqrtCorrection2(), u.keep(), stream());
        launched("adamw");
    }

    /** Every tensor's partial sums go into one device double, which comes back in one copy. */
    @Override
    public double sumOfSquares(List<Tensor> xs) {
        CHECK.sumOfSquares(xs);
        cuda(cudaMemsetAsync(squares, 0, Double.BYTES, stream()), "cudaMemsetAsync");
        for (Tensor x : xs) {
            NativeCuda.sumSquares(squares, x.floatPointer(), x.size(), stream());
            launched("sumOfSquares");
        }
        cuda(cudaMemcpyAsync(squaresOnHost, squares, Double.BYTES, cudaMemcpyDeviceToHost, stream()), "cudaMemcpyAsync");
        cuda(cudaStreamSynchronize(stream()), "a queued op or sumOfSquares");
        return squaresOnHost.get();
    }

    @Override
    public void dropoutMask(Tensor mask, double rate, Philox noise) {
        CHECK.dropoutMask(mask, rate);
        NativeCuda.dropoutMask(mask.floatPointer(), mask.size(), rate, noise.key(), noise.offset(), stream());
        launched("dropoutMask");
    }

    /**
     * Waits for the queued work, then frees every tensor still open, the workspace, cuBLAS and the stream. The
     * first failure is thrown after everything was released.
     */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        int status = cudaStreamSynchronize(stream);
        for (Pointer p : live) cudaFreeAsync(p, stream);
        live.clear();
        release();
        cuda(status, "a queued op (found when closing the backend)");
    }

    private void release() {
        if (blasCreated) cublasDestroy_v2(blas);
        if (!workspace.isNull()) cudaFree(workspace);
        if (!squares.isNull()) cudaFree(squares);
        if (streamCreated) {
            cudaStreamSynchronize(stream);
            cudaStreamDestroy(stream);
        }
        one.close();
        zero.close();
        scoreScale.close();
        squaresOnHost.close();
    }

    /**
     * A GEMM on row-major tensors through column-major cuBLAS: a row-major [r, c] matrix is the column-major
     * [c, r] matrix with leading dimension c, i.e. its transpose, so each product is computed transposed:
     * C[m, n] = op(A) · op(B) in cuBLAS's terms, with alpha 1 and the given beta. A is the weight wherever a
     * weight takes part; a bf16 A makes it a bf16 GEMM, with B (f32) rounded to bf16 first, since cuBLAS wants
     * both inputs of one type.
     */
    private void gemm(String op, int transA, int transB, int m, int n, int k, Tensor a, int lda, Tensor b, int ldb,
                      FloatPointer beta, Tensor c, int ldc) {
        stream();
        if (a.dtype() == Tensor.DType.BF16) {
            Tensor b16 = toBf16(Scratch.GEMM_OPERAND, b);
            // void* arguments: JavaCPP adds their positions in bytes
            blas(cublasGemmEx(blas, transA, transB, m, n, k, one, a.bytePointer(), CUDA_R_16BF, lda, b16.bytePointer(),
                    CUDA_R_16BF, ldb, beta, c.bytePointer(), CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                    op + " (cublasGemmEx, bf16)");
        } else {
            blas(cublasSgemm_v2(blas, transA, transB, m, n, k, one, a.floatPointer(), lda, b.floatPointer(), ldb, beta,
                    c.floatPointer(), ldc), op + " (cublasSgemm)");
        }
    }

    /**
     * Attention at BF16 for many queries, as two strided-batched GEMMs around a causal softmax (see the class
     * comment). Row-major [r, c] is column-major [c, r], so each product is computed transposed, one cuBLAS call
     * per query head j of a GQA group, batched over the kv heads g (query head g * group + j reads kv head g):
     * <pre>
     *   scoresᵀ[t, rows] of head h = K_g[t, hd] · Q_h[rows, hd]ᵀ / sqrt(hd)   scores: [heads, rows, t] fp32
     *   probs = causal softmax of the scores, bf16                               probs:  [heads, rows, t] bf16
     *   outᵀ[hd, rows] of head h   = V_g[t, hd]ᵀ · probs_h[rows, t]ᵀ             into out's columns of head h
     * </pre>
     */
    private void gemmAttention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor positions, int nHeads, int nKvHeads,
                               int headDim) {
        int n = q.rows(), t = k.rows(), group = nHeads / nKvHeads, qCols = q.cols(), kvCols = k.cols();
        Tensor qb = toBf16(Scratch.ATTENTION_Q, q), kb = toBf16(Scratch.ATTENTION_K, k), vb = toBf16(Scratch.ATTENTION_V, v);
        int chunk = (int) Math.max(1, Math.min(n, scoresBytes / ((long) Float.BYTES * nHeads * t)));
        Tensor scores = scratch(Scratch.ATTENTION_SCORES, Tensor.DType.F32, (long) nHeads * chunk * t);
        Tensor probs = scratch(Scratch.ATTENTION_PROBS, Tensor.DType.BF16, (long) nHeads * chunk * t);
        scoreScale.put(0, (float) (1 / Math.sqrt(headDim)));
        for (int row0 = 0; row0 < n; row0 += chunk) {
            int rows = Math.min(chunk, n - row0);
            long head = (long) rows * t; // elements of one head's scores (and probabilities)
            for (int j = 0; j < group; j++) {
                blas(cublasGemmStridedBatchedEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, t, rows, headDim, scoreScale,
                        at(kb, 0), CUDA_R_16BF, kvCols, headDim,
                        at(qb, (long) row0 * qCols + (long) j * headDim), CUDA_R_16BF, qCols, (long) group * headDim,
                        zero, at(scores, j * head), CUDA_R_32F, t, group * head,
                        nKvHeads, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT), "attention scores (cublasGemmStridedBatchedEx)");
            }
            IntPointer chunkPositions = new IntPointer(positions.intPointer());
            chunkPositions.position(chunkPositions.position() + row0);
            NativeCuda.attentionProbsBf16(probs.bf16Pointer(), scores.floatPointer(), chunkPositions, rows, nHeads, t,
                    stream());
            launched("attention probabilities");
            for (int j = 0; j < group; j++) {
                blas(cublasGemmStridedBatchedEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, headDim, rows, t, one,
                        at(vb, 0), CUDA_R_16BF, kvCols, headDim,
                        at(probs, j * head), CUDA_R_16BF, t, group * head,
                        zero, at(out, (long) row0 * qCols + (long) j * headDim), CUDA_R_32F, qCols, (long) group * headDim,
                        nKvHeads, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT), "attention output (cublasGemmStridedBatchedEx)");
            }
        }
    }

    /** The address of element {@code index} of t (row-major), for cuBLAS's void* operands. */
    private static Pointer at(Tensor t, long index) {
        Pointer p = t.bytePointer();
        return p.position(p.position() + index * t.dtype().bytes);
    }

    /**
     * src rounded to bf16, in a scratch tensor (valid until that scratch is next filled; the stream orders its
     * reuse after the work that reads it).
     */
    private Tensor toBf16(Scratch which, Tensor src) {
        Tensor b16 = scratch(which, Tensor.DType.BF16, src.size()).reshape(src.shape());
        NativeCuda.f32ToBf16(b16.bf16Pointer(), src.floatPointer(), src.size(), stream());
        launched("f32 to bf16");
        return b16;
    }

    /** The first len elements of a scratch tensor, which grows to len when it is smaller. */
    private Tensor scratch(Scratch which, Tensor.DType dtype, long len) {
        int capacity = Math.toIntExact(len);
        Tensor s = scratch[which.ordinal()];
        if (s == null || s.rows() < capacity) {
            if (s != null) s.close(); // stream-ordered: after the work already queued that reads it
            scratch[which.ordinal()] = null; // a failed allocation below must not leave the closed tensor in place
            scratch[which.ordinal()] = uninitialised(dtype, new int[] {capacity, 1});
        }
        return scratch[which.ordinal()].rows(0, capacity);
    }

    /** Fresh device memory for a tensor (at least one element, so that every tensor has its own address). */
    private Tensor uninitialised(Tensor.DType dtype, int[] shape) {
        long bytes = Math.max(1, Tensor.product(shape)) * dtype.bytes;
        Pointer memory = new Pointer();
        synchronized (this) {
            cuda(cudaMallocAsync(memory, bytes, stream()), "cudaMallocAsync of " + bytes + " bytes");
            live.add(memory);
        }
        return Tensor.onDevice(dtype, shape, Device.CUDA, memory, () -> free(memory));
    }

    private synchronized void free(Pointer memory) {
        if (live.remove(memory)) cuda(cudaFreeAsync(memory, stream), "cudaFreeAsync");
    }

    private void zero(Tensor t) {
        cuda(cudaMemsetAsync(t.bytePointer(), 0, t.bytes(), stream()), "cudaMemsetAsync");
    }

    private CUstream_st stream() {
        if (closed) throw new IllegalStateException("the CUDA backend is closed");
        return stream;
    }

    /** Throws if the kernel just enqueued for op failed to launch (or an earlier one failed while running). */
    private static void launched(String op) {
        cuda(cudaGetLastError(), op);
    }

    private static void cuda(int status, String what) {
        if (status != cudaSuccess) {
            throw new IllegalStateException("CUDA error in " + what + ": " + cudaGetErrorString(status).getString()
                    + " (" + status + ")");
        }
    }

    private static void blas(int status, String what) {
        if (status != CUBLAS_STATUS_SUCCESS) {
            throw new IllegalStateException("cuBLAS error in " + what + ": " + cublasGetStatusString(status).getString()
                    + " (" + status + ")");
        }
    }
}
