package io.skipgpt.train;

import io.skipgpt.tensor.Tensor;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * AdamW (Loshchilov and Hutter) with decoupled weight decay, the same update as PyTorch's {@code torch.optim.AdamW}:
 * <pre>
 *   p -= lr * weightDecay * p                     (only parameters marked decay)
 *   m  = beta1 * m + (1 - beta1) * g
 *   v  = beta2 * v + (1 - beta2) * g^2
 *   p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 * </pre>
 * The optimizer updates the parameter tensors in place and owns its moment tensors (close it). The gradient tensors
 * belong to the caller, who fills them before each {@link #step}. Updates run element by element on the host in
 * double precision and are stored as float32.
 */
public final class AdamW implements AutoCloseable {
    /** Hyper-parameters except the learning rate, which the caller passes per step from an {@link LrSchedule}. */
    public record Config(double beta1, double beta2, double eps, double weightDecay) {
        /** PyTorch's betas and eps; weight decay 0.01 as the reference code uses for the routers. */
        public static final Config DEFAULT = new Config(0.9, 0.999, 1e-8, 0.01);

        public Config {
            if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("beta1 must be in [0, 1), got " + beta1);
            if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("beta2 must be in [0, 1), got " + beta2);
            if (!(eps > 0) || Double.isInfinite(eps)) throw new IllegalArgumentException("eps must be a finite number > 0, got " + eps);
            if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
                throw new IllegalArgumentException("weight decay must be a finite number >= 0, got " + weightDecay);
            }
        }

        public Config withWeightDecay(double weightDecay) {
            return new Config(beta1, beta2, eps, weightDecay);
        }
    }

    /** One trainable tensor, its same-shaped gradient, and whether weight decay applies to it. */
    public record Param(String name, Tensor value, Tensor grad, boolean decay) {
        public Param {
            if (name == null || name.isEmpty()) throw new IllegalArgumentException("a parameter needs a name");
            if (value.dtype() != Tensor.DType.F32 || grad.dtype() != Tensor.DType.F32) {
                throw new IllegalArgumentException(name + ": parameter and gradient must be F32");
            }
            if (!Arrays.equals(value.shape(), grad.shape())) {
                throw new IllegalArgumentException(name + ": gradient shape " + Arrays.toString(grad.shape())
                        + " differs from parameter shape " + Arrays.toString(value.shape()));
            }
        }

        /**
         * Decay for matrices, none for vectors: biases (and norm weights) are not decayed, as Hugging Face's
         * Trainer, which the reference code trains with, does.
         */
        public static Param of(String name, Tensor value, Tensor grad) {
            return new Param(name, value, grad, value.rank() >= 2);
        }
    }

    private final List<Param> params;
    private final Config config;
    private final List<Tensor> m = new ArrayList<>();
    private final List<Tensor> v = new ArrayList<>();
    private long steps;

    public AdamW(List<Param> params, Config config) {
        Set<String> names = new HashSet<>();
        for (Param p : params) {
            if (!names.add(p.name())) throw new IllegalArgumentException("parameter " + p.name() + " given twice");
        }
        this.params = List.copyOf(params);
        this.config = config;
        for (Param p : this.params) {
            m.add(Tensor.f32(p.value().shape()));
            v.add(Tensor.f32(p.value().shape()));
        }
    }

    public Config config() {
        return config;
    }

    /** Optimizer steps taken so far (restored by {@link #loadState}); the bias correction of the next step uses steps() + 1. */
    public long steps() {
        return steps;
    }

    /**
     * One update of every parameter from its gradient. A non-finite gradient makes non-finite parameters: check the
     * norm {@link #clipGradNorm} returns and skip the step when it is not finite.
     */
    public void step(double lr) {
        if (!(lr >= 0) || Double.isInfinite(lr)) throw new IllegalArgumentException("learning rate must be a finite number >= 0, got " + lr);
        long t = steps + 1;
        double b1 = config.beta1();
        double b2 = config.beta2();
        double stepSize = lr / (1 - Math.pow(b1, t));
        double sqrtCorrection2 = Math.sqrt(1 - Math.pow(b2, t));
        for (int i = 0; i < params.size(); i++) {
            Param p = params.get(i);
            double keep = p.decay() ? 1 - lr * config.weightDecay() : 1;
            FloatBuffer pv = p.value().floats();
            FloatBuffer gv = p.grad().floats();
            FloatBuffer mv = m.get(i).floats();
            FloatBuffer vv = v.get(i).floats();
            for (int j = 0, n = pv.limit(); j < n; j++) {
                double g = gv.get(j);
                double mj = b1 * mv.get(j) + (1 - b1) * g;
                double vj = b2 * vv.get(j) + (1 - b2) * g * g;
                mv.put(j, (float) mj);
                vv.put(j, (float) vj);
                double denom = Math.sqrt(vj) / sqrtCorrection2 + config.eps();
                pv.put(j, (float) (pv.get(j) * keep - stepSize * mj / denom));
            }
        }
        steps = t;
    }

    /** Sets every gradient to zero (for accumulating the next step's gradients). */
    public void zeroGrad() {
        for (Param p : params) {
            FloatBuffer g = p.grad().floats();
            for (int j = 0, n = g.limit(); j < n; j++) g.put(j, 0f);
        }
    }

    /** {@link #clipGradNorm(List, double)} over this optimizer's gradients. */
    public double clipGradNorm(double maxNorm) {
        List<Tensor> grads = new ArrayList<>(params.size());
        for (Param p : params) grads.add(p.grad());
        return clipGradNorm(grads, maxNorm);
    }

    /**
     * Scales all gradients together so that their global L2 norm is at most {@code maxNorm} (PyTorch's
     * {@code clip_grad_norm_}: factor {@code maxNorm / (norm + 1e-6)}), and returns the norm before clipping.
     * A non-finite norm leaves the gradients untouched; the caller sees it and decides (usually: skip the step).
     */
    public static double clipGradNorm(List<Tensor> grads, double maxNorm) {
        if (!(maxNorm > 0)) throw new IllegalArgumentException("max norm must be > 0, got " + maxNorm);
        double sumSquares = 0;
        for (Tensor g : grads) {
            FloatBuffer b = g.floats();
            for (int j = 0, n = b.limit(); j < n; j++) sumSquares += (double) b.get(j) * b.get(j);
        }
        double norm = Math.sqrt(sumSquares);
        if (Double.isFinite(norm) && norm > maxNorm) {
            double scale = maxNorm / (norm + 1e-6);
            for (Tensor g : grads) {
                FloatBuffer b = g.floats();
                for (int j = 0, n = b.limit(); j < n; j++) b.put(j, (float) (b.get(j) * scale));
            }
        }
        return norm;
    }

    /**
     * The moment tensors by checkpoint name ({@code optimizer.<param>.exp_avg} and {@code .exp_avg_sq}, PyTorch's
     * names): live views, to save next to the parameters. The step count goes into the checkpoint's state file.
     */
    public Map<String, Tensor> state() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (int i = 0; i < params.size(); i++) {
            out.put(firstMomentName(params.get(i).name()), m.get(i));
            out.put(secondMomentName(params.get(i).name()), v.get(i));
        }
        return Collections.unmodifiableMap(out);
    }

    /** Restores the moments (copied from {@code tensors}, which may hold other entries too) and the step count. */
    public void loadState(Map<String, Tensor> tensors, long steps) {
        if (steps < 0) throw new IllegalArgumentException("optimizer steps must be >= 0, got " + steps);
        for (int i = 0; i < params.size(); i++) {
            String name = params.get(i).name();
            copyMoment(tensors, firstMomentName(name), m.get(i));
            copyMoment(tensors, secondMomentName(name), v.get(i));
        }
        this.steps = steps;
    }

    private static void copyMoment(Map<String, Tensor> tensors, String name, Tensor into) {
        Tensor saved = tensors.get(name);
        if (saved == null) throw new IllegalArgumentException("optimizer state has no " + name);
        if (!Arrays.equals(saved.shape(), into.shape())) {
            throw new IllegalArgumentException(name + " has shape " + Arrays.toString(saved.shape())
                    + ", the parameter needs " + Arrays.toString(into.shape()));
        }
        into.copyFrom(saved);
    }

    private static String firstMomentName(String param) {
        return "optimizer." + param + ".exp_avg";
    }

    private static String secondMomentName(String param) {
        return "optimizer." + param + ".exp_avg_sq";
    }

    @Override
    public void close() {
        m.forEach(Tensor::close);
        v.forEach(Tensor::close);
    }
}
