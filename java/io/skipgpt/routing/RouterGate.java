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
 * <p>The logits [n, 4] are one product on the backend, against router tensors where its ops read them: the routers'
 * own on a host backend, else device copies made when the gate is made (later changes to the routers are not seen),
 * or a trainer's tensors there, read as they are at each pass ({@link #deterministic}). Deterministic decisions are
 * taken there too, by {@link Backend#routerGates} without noise, and come to the host as [2, n] 0/1 gates: 8 bytes
 * per row and layer. Sampled ones are drawn on the host from the logits (16 bytes per row and layer) and the host
 * bias.
 */
public final class RouterGate implements Gate {
    public enum Mode { DETERMINISTIC, SAMPLE }

    private final Routers routers; // the host routers, whose bias sampling reads; null for a trainer's tensors
    private final boolean ownsRouters;
    private final Backend backend;
    private final Mode mode;
    private final SplittableRandom random;
    /** The router weight [layers·4, dim] and bias [layers·4, 1] where the backend's ops read them. */
    private final Tensor weight, bias;
    private Tensor logits; // [capacity, 4] on the backend's device
    private Tensor gates, soft; // [2·capacity, 1] there, seen as [2, n] per call (deterministic)
    private Tensor host; // what comes to the host, gates or logits; the same tensor on a host backend

    /** A gate over routers the caller owns (and closes after the gate). */
    public RouterGate(Routers routers, Backend backend, Mode mode, long seed) {
        this(routers, backend, mode, seed, false);
    }

    /** A gate that owns its routers: closing it closes them (routers read from a file for this gate alone). */
    public static RouterGate owning(Routers routers, Backend backend, Mode mode, long seed) {
        return new RouterGate(routers, backend, mode, seed, true);
    }

    /**
     * A deterministic gate over router tensors already where the backend's ops read them, weight [layers·4, dim] and
     * bias [layers·4, 1], which the caller owns: routers as they train, used without copying them anywhere.
     */
    public static RouterGate deterministic(Tensor weight, Tensor bias, Backend backend) {
        return new RouterGate(null, weight, bias, backend, Mode.DETERMINISTIC, 0, false);
    }

    private RouterGate(Routers routers, Backend backend, Mode mode, long seed, boolean ownsRouters) {
        this(routers, onHost(backend) ? routers.weight() : backend.upload(routers.weight()),
                onHost(backend) ? routers.bias() : backend.upload(routers.bias()), backend, mode, seed, ownsRouters);
    }

    private RouterGate(Routers routers, Tensor weight, Tensor bias, Backend backend, Mode mode, long seed,
                       boolean ownsRouters) {
        this.routers = routers;
        this.weight = weight;
        this.bias = bias;
        this.ownsRouters = ownsRouters;
        this.backend = backend;
        this.mode = mode;
        this.random = new SplittableRandom(seed);
        grow(0);
    }

    private static boolean onHost(Backend backend) {
        return backend.device() == Device.CPU;
    }

    private void grow(int rows) {
        if (logits != null) closeBuffers();
        logits = backend.allocate(Tensor.DType.F32, rows, 4);
        if (mode == Mode.DETERMINISTIC) {
            gates = backend.allocate(Tensor.DType.F32, 2 * rows, 1);
            soft = backend.allocate(Tensor.DType.F32, 2 * rows, 1); // written by routerGates, never read
        }
        Tensor down = mode == Mode.DETERMINISTIC ? gates : logits;
        host = onHost(backend) ? down : Tensor.f32(down.shape());
    }

    @Override
    public void decide(int layer, Tensor x, boolean[] keepAttn, boolean[] keepMlp) {
        int n = x.rows();
        if (x.cols() != weight.cols()) {
            throw new IllegalArgumentException("routers were made for dim " + weight.cols() + ", the model has " + x.cols());
        }
        if (logits.rows() < n) grow(n);
        Tensor z = logits.rows(0, n);
        backend.matmul(z, x, weight.rows(4 * layer, 4));
        if (mode == Mode.DETERMINISTIC) {
            // gates[0, i] = 1 iff z_exec + b_exec > z_skip + b_skip for attention, gates[1, i] for the MLP
            Tensor g = gates.rows(0, 2 * n);
            backend.routerGates(g.reshape(2, n), soft.rows(0, 2 * n).reshape(2, n), z, bias.rows(4 * layer, 4), null,
                    1.0, null, null);
            FloatBuffer kept = toHost(g);
            for (int i = 0; i < n; i++) {
                keepAttn[i] = kept.get(i) > 0;
                keepMlp[i] = kept.get(n + i) > 0;
            }
            return;
        }
        FloatBuffer h = toHost(z);
        float ae = routers.bias(layer, Routers.ATTN_EXECUTE), as = routers.bias(layer, Routers.ATTN_SKIP);
        float me = routers.bias(layer, Routers.MLP_EXECUTE), ms = routers.bias(layer, Routers.MLP_SKIP);
        for (int i = 0; i < n; i++) {
            keepAttn[i] = sample(h.get(4 * i + Routers.ATTN_EXECUTE) + ae, h.get(4 * i + Routers.ATTN_SKIP) + as);
            keepMlp[i] = sample(h.get(4 * i + Routers.MLP_EXECUTE) + me, h.get(4 * i + Routers.MLP_SKIP) + ms);
        }
    }

    // The first rows of host, holding what t (the same rows of gates or logits) holds.
    private FloatBuffer toHost(Tensor t) {
        Tensor h = host.rows(0, t.rows());
        if (!onHost(backend)) backend.copy(h, t);
        return h.floats();
    }

    private boolean sample(float z0, float z1) {
        double p = 1.0 / (1.0 + Math.exp(-(double) (z0 - z1)));
        return random.nextDouble() < p;
    }

    @Override
    public void close() {
        closeBuffers();
        if (routers != null && weight != routers.weight()) {
            weight.close();
            bias.close();
        }
        if (ownsRouters) routers.close();
    }

    private void closeBuffers() {
        logits.close();
        if (gates != null) {
            gates.close();
            soft.close();
        }
        if (host != logits && host != gates) host.close();
    }
}
