package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.eval.Perplexity;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The training pass: forward consistent with inference, backward equal to the straight-through gradient. */
class GatedLlamaTest {
    static final LlamaConfig CONFIG = new LlamaConfig(16, 24, 2, 4, 2, 37, 32, 10000f, 1e-5f, false);
    static final int[] INPUTS = {1, 5, 30, 12, 12, 7, 36, 2};
    static final int[] TARGETS = {5, 30, 12, 12, 7, 36, 2, 9};

    @Test
    void allGatesOpenIsTheDenseModel() {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 1); Backend b = new CpuBackend();
                Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 2);
                LlamaModel model = new LlamaModel(CONFIG, w, b)) {
            for (int l = 0; l < CONFIG.nLayers(); l++) {
                routers.bias().set(4L * l + Routers.ATTN_EXECUTE, 100f);
                routers.bias().set(4L * l + Routers.MLP_EXECUTE, 100f);
            }
            GatedLlama gated = new GatedLlama(CONFIG, w, b, routers);
            int[] ids = java.util.Arrays.copyOf(INPUTS, INPUTS.length + 1);
            ids[INPUTS.length] = TARGETS[TARGETS.length - 1];
            double dense = new Perplexity(model, null, 64).scoreIds(ids).nll();
            try (GatedLlama.Tape t = gated.forward(INPUTS, TARGETS, new Rng(3), 5.0)) {
                assertEquals(2.0 * CONFIG.nLayers() * INPUTS.length, t.gateSum());
                assertEquals(dense, t.nllSum(), 1e-4);
            }
        }
    }

    @Test
    void backwardIsTheStraightThroughGradient() {
        double tau = 1.5, alpha = 0.7, target = 0.4;
        try (LlamaWeights w = RandomWeights.create(CONFIG, 4); Backend b = new CpuBackend();
                Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 5);
                Tensor dW = Tensor.f32(CONFIG.nLayers() * 4, CONFIG.dim());
                Tensor dB = Tensor.f32(CONFIG.nLayers() * 4, 1)) {
            GatedLlama gated = new GatedLlama(CONFIG, w, b, routers);
            int n = INPUTS.length;
            double decisions = 2.0 * CONFIG.nLayers() * n;
            try (GatedLlama.Tape hard = gated.forward(INPUTS, TARGETS, new Rng(9), tau)) {
                double r = hard.gateSum() / decisions;
                assertTrue(r > 0.1 && r < 0.9, "want a mix of gates, r = " + r);
                float gateGrad = (float) (alpha * Math.signum(r - (1 - target)) / decisions);
                gated.backward(hard, (float) (1.0 / n), gateGrad, dW, dB);
                // Central differences of the surrogate loss in every router parameter.
                double maxErr = 0, maxGrad = 0;
                for (Tensor[] pair : new Tensor[][] {{routers.weight(), dW}, {routers.bias(), dB}}) {
                    Tensor p = pair[0], g = pair[1];
                    for (long i = 0; i < p.size(); i++) {
                        float keep = p.get(i);
                        float eps = 1e-2f;
                        p.set(i, keep + eps);
                        double plus = surrogateLoss(gated, hard, tau, alpha, target, decisions);
                        p.set(i, keep - eps);
                        double minus = surrogateLoss(gated, hard, tau, alpha, target, decisions);
                        p.set(i, keep);
                        double fd = (plus - minus) / (2 * eps);
                        maxErr = Math.max(maxErr, Math.abs(fd - g.get(i)));
                        maxGrad = Math.max(maxGrad, Math.abs(g.get(i)));
                    }
                }
                System.out.printf("straight-through router gradient vs finite differences: max abs err %.3e, max |grad| %.3e%n",
                        maxErr, maxGrad);
                assertTrue(maxGrad > 1e-3, "the gradient should not vanish: " + maxGrad);
                assertTrue(maxErr <= 2e-2 * maxGrad, "max error " + maxErr + " vs max gradient " + maxGrad);
            }
        }
    }

    private static double surrogateLoss(GatedLlama gated, GatedLlama.Tape hard, double tau, double alpha, double target,
                                        double decisions) {
        try (GatedLlama.Tape t = gated.forward(INPUTS, TARGETS, new Rng(9), tau, hard)) {
            return t.nllSum() / INPUTS.length + alpha * Math.abs((1 - target) - t.gateSum() / decisions);
        }
    }
}
