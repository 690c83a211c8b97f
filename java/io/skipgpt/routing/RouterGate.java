package io.skipgpt.routing;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Device;
import io.skipgpt.tensor.Tensor;
import java.nio.FloatBuffer;
import java.util.SplittableRandom;

/**
 * Gates from trained routers. Deterministic (inference): execute iff logit 0 > logit 1. Sampled (evaluation
 * parity with training): execute with probability sigmoid(z0 - z1), which is what the forward pass of a hard
 * Gumbel-softmax draws whatever its temperature.
 *
 * <p>The logits [n, 4] are one product on the backend (on a device backend, against a device copy of the router
 * weights made when the gate is made: later changes to the routers are not seen) and come to the host, where
 * the decisions are taken: 16 bytes per row and layer.
 */
public final class RouterGate implements Gate {
    public enum Mode { DETERMINISTIC, SAMPLE }

    private final Routers routers;
    private final boolean ownsRouters;
    private final Backend backend;
    private final Mode mode;
    private final SplittableRandom random;
    /** The router weights the product reads: the routers' own on a host backend, else a device copy. */
    private final Tensor weight;
    private Tensor logits; // [capacity, 4] on the backend's device
    private Tensor hostLogits; // [capacity, 4]; the same tensor as logits on a host backend

    /** A gate over routers the caller owns (and closes after the gate). */
    public RouterGate(Routers routers, Backend backend, Mode mode, long seed) {
        this(routers, backend, mode, seed, false);
    }

    /** A gate that owns its routers: closing it closes them (routers read from a file for this gate alone). */
    public static RouterGate owning(Routers routers, Backend backend, Mode mode, long seed) {
        return new RouterGate(routers, backend, mode, seed, true);
    }

    private RouterGate(Routers routers, Backend backend, Mode mode, long seed, boolean ownsRouters) {
        this.routers = routers;
        this.ownsRouters = ownsRouters;
        this.backend = backend;
        this.mode = mode;
        this.random = new SplittableRandom(seed);
        this.weight = onHost() ? routers.weight() : backend.upload(routers.weight());
        grow(0);
    }

    private boolean onHost() {
        return backend.device() == Device.CPU;
    }

    private void grow(int rows) {
        if (logits != null) closeLogits();
        logits = backend.allocate(Tensor.DType.F32, rows, 4);
        hostLogits = onHost() ? logits : Tensor.f32(rows, 4);
    }

    @Override
    public void decide(int layer, Tensor x, boolean[] keepAttn, boolean[] keepMlp) {
        int n = x.rows();
        if (x.cols() != routers.dim()) {
            throw new IllegalArgumentException("routers were made for dim " + routers.dim() + ", the model has " + x.cols());
        }
        if (logits.rows() < n) grow(n);
        backend.matmul(logits.rows(0, n), x, weight.rows(4 * layer, 4));
        Tensor host = hostLogits.rows(0, n);
        if (!onHost()) backend.copy(host, logits.rows(0, n));
        FloatBuffer z = host.floats();
        float ae = routers.bias(layer, Routers.ATTN_EXECUTE), as = routers.bias(layer, Routers.ATTN_SKIP);
        float me = routers.bias(layer, Routers.MLP_EXECUTE), ms = routers.bias(layer, Routers.MLP_SKIP);
        for (int i = 0; i < n; i++) {
            keepAttn[i] = execute(z.get(4 * i + Routers.ATTN_EXECUTE) + ae, z.get(4 * i + Routers.ATTN_SKIP) + as);
            keepMlp[i] = execute(z.get(4 * i + Routers.MLP_EXECUTE) + me, z.get(4 * i + Routers.MLP_SKIP) + ms);
        }
    }

    private boolean execute(float z0, float z1) {
        if (mode == Mode.DETERMINISTIC) return z0 > z1;
        double p = 1.0 / (1.0 + Math.exp(-(double) (z0 - z1)));
        return random.nextDouble() < p;
    }

    @Override
    public void close() {
        closeLogits();
        if (weight != routers.weight()) weight.close();
        if (ownsRouters) routers.close();
    }

    private void closeLogits() {
        logits.close();
        if (hostLogits != logits) hostLogits.close();
    }
}
