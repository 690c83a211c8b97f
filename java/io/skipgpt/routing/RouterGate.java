package io.skipgpt.routing;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * Gates from trained routers. Deterministic (inference): execute iff logit 0 > logit 1. Sampled (evaluation
 * parity with training): execute with probability sigmoid(z0 - z1), which is what the forward pass of a hard
 * Gumbel-softmax draws whatever its temperature.
 */
public final class RouterGate implements Gate, AutoCloseable {
    public enum Mode { DETERMINISTIC, SAMPLE }

    private final Routers routers;
    private final Backend backend;
    private final Mode mode;
    private final SplittableRandom random;
    private Tensor logits = Tensor.f32(0, 4);

    public RouterGate(Routers routers, Backend backend, Mode mode, long seed) {
        this.routers = routers;
        this.backend = backend;
        this.mode = mode;
        this.random = new SplittableRandom(seed);
    }

    @Override
    public void decide(int layer, Tensor x, boolean[] keepAttn, boolean[] keepMlp) {
        int n = x.rows();
        if (x.cols() != routers.dim()) {
            throw new IllegalArgumentException("routers were made for dim " + routers.dim() + ", the model has " + x.cols());
        }
        if (logits.rows() < n) {
            logits.close();
            logits = Tensor.f32(n, 4);
        }
        Tensor z = logits.rows(0, n);
        backend.matmul(z, x, routers.layerWeight(layer));
        for (int i = 0; i < n; i++) {
            keepAttn[i] = execute(z.get(4L * i + Routers.ATTN_EXECUTE) + routers.bias(layer, Routers.ATTN_EXECUTE),
                    z.get(4L * i + Routers.ATTN_SKIP) + routers.bias(layer, Routers.ATTN_SKIP));
            keepMlp[i] = execute(z.get(4L * i + Routers.MLP_EXECUTE) + routers.bias(layer, Routers.MLP_EXECUTE),
                    z.get(4L * i + Routers.MLP_SKIP) + routers.bias(layer, Routers.MLP_SKIP));
        }
    }

    private boolean execute(float z0, float z1) {
        if (mode == Mode.DETERMINISTIC) return z0 > z1;
        double p = 1.0 / (1.0 + Math.exp(-(double) (z0 - z1)));
        return random.nextDouble() < p;
    }

    @Override
    public void close() {
        logits.close();
    }
}
