package io.skipgpt.tensor;

import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.CblasTrans;
import static org.bytedeco.openblas.global.openblas.blas_set_num_threads;
import static org.bytedeco.openblas.global.openblas.cblas_sgemm;
import static org.bytedeco.openblas.global.openblas.cblas_sgemv;

import java.util.List;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;

/**
 * The op set on the host: the native C++ kernels of {@code native/cpu} through {@link NativeCpu}, and matmul
 * through OpenBLAS (JavaCPP presets, which bundle the library and load nothing of CUDA). Arguments are checked
 * in Java first: the kernels trust their pointers and sizes.
 */
public final class CpuBackend extends HostBackend {
    static {
        // Load both native sides now, so that a broken install fails when the backend is opened, not mid-run.
        Loader.load(NativeCpu.class);
        int processors = Runtime.getRuntime().availableProcessors();
        blas_set_num_threads(blasThreads(System.getenv("OPENBLAS_NUM_THREADS"), processors));
    }

    /** OPENBLAS_NUM_THREADS when it is a positive integer, otherwise every processor this JVM may use. */
    static int blasThreads(String env, int processors) {
        if (env != null) {
            try {
                int threads = Integer.parseInt(env.trim());
                if (threads > 0) return threads;
            } catch (NumberFormatException ignored) {
                // not a number: use the default
            }
        }
        return processors;
    }

    /**
     * Sets the OpenBLAS thread count of this process (instead of the default above). Small models want one: their
     * products are too small to split over threads, and on a busy machine spinning BLAS threads cost more than
     * they save (not measured on its own; the thread figures recorded are serving's, benchmarks/serve-cpu.md).
     */
    public static void setBlasThreads(int threads) {
        if (threads <= 0) throw new IllegalArgumentException("BLAS threads must be positive, got " + threads);
        blas_set_num_threads(threads);
    }

    @Override
    public String name() {
        return "cpu";
    }

    /**
     * out[n, m] = x[n, k] · w[m, k]ᵀ. Row-major x times transposed row-major w is sgemm(NoTrans, Trans);
     * a single row (decode) is w[m, k] · x[k], sgemv, which streams w once without packing it.
     */
    @Override
    public void matmul(Tensor out, Tensor x, Tensor w) {
        CHECK.matmul(out, x, w);
        int n = x.rows(), k = x.cols(), m = w.rows();
        if (n == 0 || m == 0) return;
        if (k == 0) {
            // an empty sum; BLAS would return early and leave out unwritten (sgemv does)
            out.fill(0f);
        } else if (n == 1) {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, m, k, 1f, w.f32(), k, x.f32(), 1, 0f, out.f32(), 1);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, k, 1f, x.f32(), k, w.f32(), k, 0f, out.f32(), m);
        }
    }

    @Override
    public void rmsnorm(Tensor out, Tensor x, Tensor weight, float eps) {
        CHECK.rmsnorm(out, x, weight);
        NativeCpu.rmsnorm(out.f32(), x.f32(), weight.f32(), x.rows(), x.cols(), eps);
    }

    @Override
    public void rope(Tensor x, Tensor positions, int headDim, float theta, RopeStyle style) {
        CHECK.rope(x, positions, headDim, theta);
        NativeCpu.rope(x.f32(), positions.i32(), x.rows(), x.cols() / headDim, headDim, theta,
                style == RopeStyle.ROTATE_HALF ? 1 : 0);
    }

    @Override
    public void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor positions, Tensor keyStarts,
                          int nHeads, int nKvHeads, int headDim) {
        CHECK.attention(out, q, k, v, positions, keyStarts, nHeads, nKvHeads, headDim);
        NativeCpu.attention(out.f32(), q.f32(), k.f32(), v.f32(), positions.i32(),
                keyStarts == null ? null : keyStarts.i32(), q.rows(), nHeads, nKvHeads, headDim);
    }

    @Override
    public void swiglu(Tensor out, Tensor gate, Tensor up) {
        CHECK.swiglu(out, gate, up);
        NativeCpu.swiglu(out.f32(), gate.f32(), up.f32(), out.size());
    }

    @Override
    public void softmax(Tensor x) {
        CHECK.softmax(x);
        NativeCpu.softmax(x.f32(), x.rows(), x.cols());
    }

    @Override
    public void embedding(Tensor out, Tensor table, Tensor ids) {
        CHECK.embedding(out, table, ids);
        NativeCpu.embedding(out.f32(), table.f32(), ids.i32(), out.rows(), out.cols());
    }

    @Override
    public void gatherRows(Tensor out, Tensor src, Tensor idx) {
        CHECK.gatherRows(out, src, idx);
        NativeCpu.gatherRows(out.f32(), src.f32(), idx.i32(), out.rows(), out.cols());
    }

    @Override
    public void scatterAddRows(Tensor dst, Tensor src, Tensor idx) {
        CHECK.scatterAddRows(dst, src, idx);
        NativeCpu.scatterAddRows(dst.f32(), src.f32(), idx.i32(), src.rows(), src.cols());
    }

    @Override
    public void scatterRows(Tensor dst, Tensor src, Tensor idx) {
        CHECK.scatterRows(dst, src, idx);
        NativeCpu.scatterRows(dst.f32(), src.f32(), idx.i32(), src.rows(), src.cols());
    }

    @Override
    public void add(Tensor dst, Tensor src) {
        CHECK.add(dst, src);
        NativeCpu.add(dst.f32(), src.f32(), dst.size());
    }

    @Override
    public void crossEntropy(Tensor loss, Tensor logits, Tensor targets) {
        CHECK.crossEntropy(loss, logits, targets);
        NativeCpu.crossEntropy(loss.f32(), logits.f32(), targets.i32(), logits.rows(), logits.cols());
    }

    @Override
    public void rowDot(Tensor out, Tensor a, Tensor b) {
        CHECK.rowDot(out, a, b);
        NativeCpu.rowDot(out.f32(), a.f32(), b.f32(), a.rows(), a.cols());
    }

    @Override
    public void scaleRows(Tensor x, Tensor s) {
        CHECK.scaleRows(x, s);
        NativeCpu.scaleRows(x.f32(), s.f32(), x.rows(), x.cols());
    }

    /** dx[n, k] = dy[n, m] · w[m, k] (beta 1 when adding) and dw[m, k] += dy[n, m]ᵀ · x[n, k], both sgemm. */
    @Override
    public void matmulBackward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, boolean addToDx) {
        CHECK.matmulBackward(dx, dw, dy, x, w);
        int n = x.rows(), k = x.cols(), m = w.rows();
        if (n == 0 || k == 0) return;
        if (dx != null) {
            float beta = addToDx ? 1f : 0f;
            if (m == 0) {
                // an empty sum; BLAS would return early and leave dx unwritten
                if (!addToDx) dx.fill(0f);
            } else if (n == 1) {
                cblas_sgemv(CblasRowMajor, CblasTrans, m, k, 1f, w.f32(), k, dy.f32(), 1, beta, dx.f32(), 1);
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, k, m, 1f, dy.f32(), m, w.f32(), k,
                        beta, dx.f32(), k);
            }
        }
        if (dw != null && m > 0) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, k, n, 1f, dy.f32(), m, x.f32(), k, 1f, dw.f32(), k);
        }
    }

    @Override
    public void rmsnormBackward(Tensor dx, Tensor dWeight, Tensor dy, Tensor x, Tensor weight, float eps) {
        CHECK.rmsnormBackward(dx, dWeight, dy, x, weight);
        NativeCpu.rmsnormBackward(dx.f32(), dWeight == null ? null : dWeight.f32(), dy.f32(), x.f32(), weight.f32(),
                x.rows(), x.cols(), eps);
    }

    @Override
    public void ropeBackward(Tensor dx, Tensor positions, int headDim, float theta, RopeStyle style) {
        CHECK.ropeBackward(dx, positions, headDim, theta);
        NativeCpu.ropeBackward(dx.f32(), positions.i32(), dx.rows(), dx.cols() / headDim, headDim, theta,
                style == RopeStyle.ROTATE_HALF ? 1 : 0);
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                  Tensor positions, int nHeads, int nKvHeads, int headDim) {
        CHECK.attentionBackward(dq, dk, dv, dOut, q, k, v, positions, nHeads, nKvHeads, headDim);
        NativeCpu.attentionBackward(dq.f32(), dk.f32(), dv.f32(), dOut.f32(), q.f32(), k.f32(), v.f32(),
                positions.i32(), q.rows(), nHeads, nKvHeads, headDim);
    }

    @Override
    public void swigluBackward(Tensor dGate, Tensor dUp, Tensor dOut, Tensor gate, Tensor up) {
        CHECK.swigluBackward(dGate, dUp, dOut, gate, up);
        NativeCpu.swigluBackward(dGate.f32(), dUp.f32(), dOut.f32(), gate.f32(), up.f32(), dOut.size());
    }

    @Override
    public void crossEntropyBackward(Tensor dLogits, Tensor logits, Tensor targets, Tensor dLoss, float scale) {
        CHECK.crossEntropyBackward(dLogits, logits, targets, dLoss);
        NativeCpu.crossEntropyBackward(dLogits.f32(), logits.f32(), targets.i32(), dLoss == null ? null : dLoss.f32(),
                scale, logits.rows(), logits.cols());
    }

    @Override
    public void loraForward(Tensor out, Tensor x, Tensor a, Tensor b, float scale) {
        CHECK.loraForward(out, x, a, b);
        NativeCpu.loraForward(out.f32(), x.f32(), a.f32(), b.f32(), x.rows(), x.cols(), b.rows(), a.rows(), scale);
    }

    @Override
    public void loraBackward(Tensor dx, Tensor dA, Tensor dB, Tensor dy, Tensor x, Tensor a, Tensor b, float scale) {
        CHECK.loraBackward(dx, dA, dB, dy, x, a, b);
        NativeCpu.loraBackward(dx.f32(), dA.f32(), dB.f32(), dy.f32(), x.f32(), a.f32(), b.f32(), x.rows(), x.cols(),
                b.rows(), a.rows(), scale);
    }

    @Override
    public void routerGates(Tensor gates, Tensor soft, Tensor logits, Tensor bias, Philox noise, double tau,
                            Tensor hardGates, Tensor hardSoft) {
        CHECK.routerGates(gates, soft, logits, bias, tau, hardGates, hardSoft);
        NativeCpu.routerGates(gates.f32(), soft.f32(), logits.f32(), bias.f32(), logits.rows(), tau, noise == null ? 0 : 1,
                noise == null ? 0 : noise.key(), noise == null ? 0 : noise.offset(), orNull(hardGates), orNull(hardSoft));
    }

    @Override
    public void routerGatesBackward(Tensor dLogits, Tensor dBias, Tensor dGates, Tensor soft, float gateGrad, double tau) {
        CHECK.routerGatesBackward(dLogits, dBias, dGates, soft, tau);
        NativeCpu.routerGatesBackward(dLogits.f32(), dBias.f32(), dGates.f32(), soft.f32(), dLogits.rows(), gateGrad, tau);
    }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamUpdate u) {
        CHECK.adamw(param, grad, m, v);
        NativeCpu.adamw(param.f32(), grad.f32(), m.f32(), v.f32(), param.size(), u.gradScale(), u.beta1(), u.beta2(),
                u.eps(), u.stepSize(), u.sqrtCorrection2(), u.keep());
    }

    @Override
    public double sumOfSquares(List<Tensor> xs) {
        CHECK.sumOfSquares(xs);
        try (DoublePointer sum = new DoublePointer(1).put(0.0)) {
            for (Tensor x : xs) NativeCpu.sumSquares(sum, x.f32(), x.size());
            return sum.get();
        }
    }

    @Override
    public void dropoutMask(Tensor mask, double rate, Philox noise) {
        CHECK.dropoutMask(mask, rate);
        NativeCpu.dropoutMask(mask.f32(), mask.size(), rate, noise.key(), noise.offset());
    }

    private static FloatPointer orNull(Tensor t) {
        return t == null ? null : t.f32();
    }
}
