package io.skipgpt.train;

import io.skipgpt.tensor.AdamUpdate;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
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
 * belong to the caller, who fills them before each {@link #step}. Parameters, gradients and moments all live on one
 * backend's device, where the update runs ({@link Backend#adamw}: element by element in double precision, stored as
 * float32); per step only the gradient norm comes back to the host, and only a checkpoint ({@link #state}) copies
 * the moments.
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

    /**
     * One trainable tensor, its same-shaped gradient (both on the optimizer's backend), and whether weight decay
     * applies to it.
     */
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

    private final Backend backend;
    private final List<Param> params;
    private final Config config;
    private final List<Tensor> m = new ArrayList<>();
    private final List<Tensor> v = new ArrayList<>();
    private final Tensor zeros; // [largest gradient, 1] of zeros on the device: zeroGrad copies it over the gradients
    private long steps;

    /** An optimizer of {@code params}, whose tensors live on {@code backend}'s device; its moments start at zero there. */
    public AdamW(Backend backend, List<Param> params, Config config) {
        Set<String> names = new HashSet<>();
        for (Param p : params) {
            if (!names.add(p.name())) throw new IllegalArgumentException("parameter " + p.name() + " given twice");
        }
        this.backend = backend;
        this.params = List.copyOf(params);
        this.config = config;
        long largest = 0;
        try {
            for (Param p : this.params) {
                m.add(backend.allocate(Tensor.DType.F32, p.value().shape()));
                v.add(backend.allocate(Tensor.DType.F32, p.value().shape()));
                largest = Math.max(largest, p.grad().size());
            }
            zeros = backend.allocate(Tensor.DType.F32, Math.toIntExact(largest), 1);
        } catch (RuntimeException e) {
            close();
            throw e;
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
     * The global L2 norm of the gradients as they stand: their sum of squares in double on the backend, one value
     * back to the host.
     */
    public double gradNorm() {
        List<Tensor> grads = new ArrayList<>(params.size());
        for (Param p : params) grads.add(p.grad());
        return Math.sqrt(backend.sumOfSquares(grads));
    }

    /**
     * PyTorch's {@code clip_grad_norm_} as a factor: {@code maxNorm / (norm + 1e-6)} when the norm exceeds maxNorm,
     * else 1 (a non-finite norm too: the caller sees it and skips the step). Pass it to {@link #step(double, double)}.
     */
    public static double clipFactor(double norm, double maxNorm) {
        if (!(maxNorm > 0)) throw new IllegalArgumentException("max norm must be > 0, got " + maxNorm);
        return Double.isFinite(norm) && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
    }

    /** {@link #step(double, double)} with the gradients as they stand. */
    public void step(double lr) {
        step(lr, 1);
    }

    /**
     * One update of every parameter from its gradient times {@code gradScale} (an average over micro-batches, a
     * clipping factor: scaling folded into the update instead of a pass over the gradients). A non-finite gradient
     * makes non-finite parameters: check {@link #gradNorm} and skip the step when it is not finite.
     */
    public void step(double lr, double gradScale) {
        if (!(lr >= 0) || Double.isInfinite(lr)) throw new IllegalArgumentException("learning rate must be a finite number >= 0, got " + lr);
        long t = steps + 1;
        double stepSize = lr / (1 - Math.pow(config.beta1(), t));
        double sqrtCorrection2 = Math.sqrt(1 - Math.pow(config.beta2(), t));
        for (int i = 0; i < params.size(); i++) {
            Param p = params.get(i);
            double keep = p.decay() ? 1 - lr * config.weightDecay() : 1;
            backend.adamw(p.value(), p.grad(), m.get(i), v.get(i), new AdamUpdate(stepSize, sqrtCorrection2,
                    config.beta1(), config.beta2(), config.eps(), keep, gradScale));
        }
        steps = t;
    }

    /** Sets every gradient to zero (for accumulating the next step's gradients), on the device. */
    public void zeroGrad() {
        for (Param p : params) backend.copy(p.grad(), zeros.rows(0, Math.toIntExact(p.grad().size())));
    }

    /**
     * The moment tensors by checkpoint name ({@code optimizer.<param>.exp_avg} and {@code .exp_avg_sq}, PyTorch's
     * names), copied to the host: new tensors the caller closes, to save next to the parameters. The step count goes
     * into the checkpoint's state file.
     */
    public Map<String, Tensor> state() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        try {
            for (int i = 0; i < params.size(); i++) {
                out.put(firstMomentName(params.get(i).name()), backend.download(m.get(i)));
                out.put(secondMomentName(params.get(i).name()), backend.download(v.get(i)));
            }
        } catch (RuntimeException e) {
            out.values().forEach(Tensor::close);
            throw e;
        }
        return out;
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

    private void copyMoment(Map<String, Tensor> tensors, String name, Tensor into) {
        Tensor saved = tensors.get(name);
        if (saved == null) throw new IllegalArgumentException("optimizer state has no " + name);
        if (!Arrays.equals(saved.shape(), into.shape())) {
            throw new IllegalArgumentException(name + " has shape " + Arrays.toString(saved.shape())
                    + ", the parameter needs " + Arrays.toString(into.shape()));
        }
        backend.copy(into, saved);
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
        if (zeros != null) zeros.close();
    }
}
