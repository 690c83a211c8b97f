package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.eval.Perplexity;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.lora.LoraConfig;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.Projection;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The training pass: forward consistent with inference, backward equal to the straight-through gradient — into the
 * routers (stage 1) and into a LoRA adapter with the routers frozen (stage 2).
 */
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
            GatedLlama gated = new GatedLlama(CONFIG, w, b, routers.weight(), routers.bias(), null);
            int[] ids = java.util.Arrays.copyOf(INPUTS, INPUTS.length + 1);
            ids[INPUTS.length] = TARGETS[TARGETS.length - 1];
            double dense = new Perplexity(model, null, 64).scoreIds(ids).nll();
            try (GatedLlama.Tape t = gated.forward(INPUTS, TARGETS, new NoiseStream(3, 0), 5.0)) {
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
            GatedLlama gated = new GatedLlama(CONFIG, w, b, routers.weight(), routers.bias(), null);
            int n = INPUTS.length;
            double decisions = 2.0 * CONFIG.nLayers() * n;
            try (GatedLlama.Tape hard = gated.forward(INPUTS, TARGETS, new NoiseStream(9, 0), tau)) {
                double r = hard.gateSum() / decisions;
                assertTrue(r > 0.1 && r < 0.9, "want a mix of gates, r = " + r);
                float gateGrad = (float) (alpha * Math.signum(r - (1 - target)) / decisions);
                gated.backward(hard, (float) (1.0 / n), gateGrad, dW, dB, null);
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
        try (GatedLlama.Tape t = gated.forward(INPUTS, TARGETS, new NoiseStream(9, 0), tau, hard)) {
            return t.nllSum() / INPUTS.length + alpha * Math.abs((1 - target) - t.gateSum() / decisions);
        }
    }

    /** Every projection adapted, rank 2, B random (a fresh B = 0 would leave A without gradient), dropout on. */
    static LoraAdapter randomAdapter(LoraConfig c, long seed) {
        LoraAdapter lora = LoraAdapter.initialise(CONFIG, c, seed);
        SplittableRandom rng = new SplittableRandom(seed + 1);
        for (int l = 0; l < CONFIG.nLayers(); l++) {
            for (Projection p : c.targets()) {
                Tensor b = lora.b(l, p);
                for (long i = 0; i < b.size(); i++) b.set(i, (float) (rng.nextDouble() - 0.5) * 0.4f);
            }
        }
        return lora;
    }

    @Test
    void adapterInTrainingIsTheAdapterInInference() {
        LoraConfig c = new LoraConfig(List.of(Projection.values()), 3, 6, 0.0);
        try (LlamaWeights w = RandomWeights.create(CONFIG, 1); Backend b = new CpuBackend();
                LoraAdapter lora = randomAdapter(c, 3); LlamaModel model = new LlamaModel(CONFIG, w, b, lora);
                LlamaModel base = new LlamaModel(CONFIG, w, b)) {
            int[] ids = Arrays.copyOf(INPUTS, INPUTS.length + 1);
            ids[INPUTS.length] = TARGETS[TARGETS.length - 1];
            double adapted = new Perplexity(model, null, 64).scoreIds(ids).nll();
            assertTrue(Math.abs(adapted - new Perplexity(base, null, 64).scoreIds(ids).nll()) > 1e-2, "the adapter should matter");
            try (GatedLlama.Tape t = new GatedLlama(CONFIG, w, b, null, null, lora).forward(INPUTS, TARGETS, null, 1, null, null)) {
                assertEquals(2.0 * CONFIG.nLayers() * INPUTS.length, t.gateSum());
                assertEquals(adapted, t.nllSum(), 1e-4);
            }
        }
    }

    @Test
    void backwardIsTheLoraGradientUnderSampledGates() {
        // Stage 2: routers frozen, gates sampled at tau = 1 and constant for the adapter
        loraGradientCheck(true);
    }

    @Test
    void backwardIsTheLoraGradientOfTheDenseModel() {
        loraGradientCheck(false);
    }

    private static void loraGradientCheck(boolean routed) {
        LoraConfig c = new LoraConfig(List.of(Projection.values()), 2, 5, 0.25);
        try (LlamaWeights w = RandomWeights.create(CONFIG, 4); Backend b = new CpuBackend();
                Routers routers = routed ? Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 5) : null;
                LoraAdapter lora = randomAdapter(c, 6); LoraAdapter grads = LoraAdapter.zeros(CONFIG, c)) {
            GatedLlama gated = new GatedLlama(CONFIG, w, b, routed ? routers.weight() : null, routed ? routers.bias() : null, lora);
            int n = INPUTS.length;
            try (GatedLlama.Tape hard = gated.forward(INPUTS, TARGETS, routed ? new NoiseStream(9, 0) : null, 1.0, new NoiseStream(11, 0), null)) {
                double r = hard.gateSum() / (2.0 * CONFIG.nLayers() * n);
                if (routed) assertTrue(r > 0.1 && r < 0.9, "want a mix of gates, r = " + r);
                gated.backward(hard, (float) (1.0 / n), 0f, null, null, grads);
                Map<String, Tensor> g = grads.tensors();
                double maxErr = 0, maxGrad = 0;
                for (Map.Entry<String, Tensor> e : lora.tensors().entrySet()) {
                    Tensor p = e.getValue(), dp = g.get(e.getKey());
                    for (long i = 0; i < p.size(); i++) {
                        float keep = p.get(i), eps = 1e-2f;
                        p.set(i, keep + eps);
                        double plus = meanCe(gated, hard, routed);
                        p.set(i, keep - eps);
                        double minus = meanCe(gated, hard, routed);
                        p.set(i, keep);
                        maxErr = Math.max(maxErr, Math.abs((plus - minus) / (2 * eps) - dp.get(i)));
                        maxGrad = Math.max(maxGrad, Math.abs(dp.get(i)));
                    }
                }
                System.out.printf("LoRA gradient (%s) vs finite differences: max abs err %.3e, max |grad| %.3e%n",
                        routed ? "sampled gates of frozen routers" : "dense", maxErr, maxGrad);
                assertTrue(maxGrad > 1e-3, "the gradient should not vanish: " + maxGrad);
                assertTrue(maxErr <= 2e-2 * maxGrad, "max error " + maxErr + " vs max gradient " + maxGrad);
            }
        }
    }

    // The surrogate loss at the hard tape's gates, noise and dropout masks (same seeds, so the same draws).
    private static double meanCe(GatedLlama gated, GatedLlama.Tape hard, boolean routed) {
        try (GatedLlama.Tape t = gated.forward(INPUTS, TARGETS, routed ? new NoiseStream(9, 0) : null, 1.0, new NoiseStream(11, 0),
                routed ? hard : null)) {
            return t.nllSum() / INPUTS.length;
        }
    }
}
