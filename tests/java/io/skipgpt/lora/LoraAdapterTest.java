package io.skipgpt.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.Projection;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.routing.Routing;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.EmulatedDevice;
import io.skipgpt.tensor.Tensor;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Adapters: PEFT's initialisation, and one function whether applied unmerged (dense or routed) or merged. */
class LoraAdapterTest {
    static final LlamaConfig CONFIG = new LlamaConfig(40, 72, 3, 4, 2, 61, 64, 10000f, 1e-5f, false);
    static final int[] TOKENS = {1, 9, 33, 60, 2, 2, 17, 41, 5, 58, 12};

    /** Every projection adapted with A as initialised and B random, so the adapter changes the model. */
    static LoraAdapter random(LlamaConfig model, LoraConfig c, long seed) {
        LoraAdapter lora = LoraAdapter.initialise(model, c, seed);
        SplittableRandom rng = new SplittableRandom(seed);
        for (int l = 0; l < model.nLayers(); l++) {
            for (Projection p : c.targets()) {
                Tensor b = lora.b(l, p);
                for (long i = 0; i < b.size(); i++) b.set(i, (float) (rng.nextDouble() - 0.5) * 0.2f);
            }
        }
        return lora;
    }

    @Test
    void initialisationIsPeftsKaimingUniformAAndZeroB() {
        try (LoraAdapter lora = LoraAdapter.initialise(CONFIG, LoraConfig.DEFAULT, 3)) {
            assertEquals(List.of(Projection.Q, Projection.V, Projection.GATE), lora.config().targets());
            assertEquals(2f, lora.config().scale());
            for (Projection p : lora.config().targets()) {
                Tensor a = lora.a(1, p), b = lora.b(1, p);
                assertEquals(List.of(16, p.inDim(CONFIG)), List.of(a.dim(0), a.dim(1)));
                assertEquals(List.of(p.outDim(CONFIG), 16), List.of(b.dim(0), b.dim(1)));
                double bound = 1 / Math.sqrt(p.inDim(CONFIG)), largest = 0;
                for (float v : a.toFloatArray()) largest = Math.max(largest, Math.abs(v));
                assertTrue(largest <= bound && largest > 0.9 * bound, p + ": max |A| " + largest + ", bound " + bound);
                for (float v : b.toFloatArray()) assertEquals(0f, v);
            }
        }
    }

    @Test
    void anAdapterGoesToADeviceAndBackInOneCopyEach() {
        try (LoraAdapter lora = random(CONFIG, LoraConfig.DEFAULT, 5); EmulatedDevice dev = new EmulatedDevice();
                LoraAdapter onDevice = lora.uploadTo(dev); LoraAdapter back = LoraAdapter.zeros(CONFIG, LoraConfig.DEFAULT)) {
            assertThrows(IllegalStateException.class, () -> onDevice.b(2, Projection.GATE).get(0));
            back.copyFrom(onDevice, dev);
            assertEquals(1, dev.uploads());
            assertEquals(1, dev.downloads());
            lora.tensors().forEach((name, t) -> assertArrayEquals(t.toFloatArray(), back.tensors().get(name).toFloatArray(), name));
        }
    }

    @Test
    void mergedWeightsGiveTheLogitsOfTheUnmergedAdapter() {
        LoraConfig c = new LoraConfig(List.of(Projection.values()), 4, 8, 0.1);
        try (LlamaWeights base = RandomWeights.create(CONFIG, 1); LlamaWeights merged = RandomWeights.create(CONFIG, 1);
                Backend b = new CpuBackend(); LoraAdapter lora = random(CONFIG, c, 2);
                Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 5);
                LlamaModel unmerged = new LlamaModel(CONFIG, base, b, lora); LlamaModel plain = new LlamaModel(CONFIG, base, b)) {
            lora.mergeInto(merged, b);
            try (LlamaModel folded = new LlamaModel(CONFIG, merged, b)) {
                float[] adapted = logits(unmerged, Routing.DENSE);
                assertClose(adapted, logits(folded, Routing.DENSE), "dense");
                assertTrue(maxDiff(adapted, logits(plain, Routing.DENSE)) > 1e-2, "the adapter should matter");
                // Routed: the adapter runs on the gathered rows only, and agrees with masked-dense and with merged.
                float[] routed = logits(unmerged, routing(routers, b, Routing.Execution.ROUTED));
                assertClose(logits(unmerged, routing(routers, b, Routing.Execution.MASKED_DENSE)), routed, "masked-dense");
                assertClose(logits(folded, routing(routers, b, Routing.Execution.ROUTED)), routed, "routed");
            }
        }
    }

    private static Routing routing(Routers routers, Backend b, Routing.Execution execution) {
        return new Routing(new RouterGate(routers, b, RouterGate.Mode.DETERMINISTIC, 0), execution, null);
    }

    private static float[] logits(LlamaModel model, Routing routing) {
        try (KvCache cache = model.newCache(TOKENS.length); Tensor out = Tensor.f32(TOKENS.length, CONFIG.vocabSize())) {
            model.forward(TOKENS, cache, out, routing);
            return out.toFloatArray();
        }
    }

    private static double maxDiff(float[] a, float[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
        return d;
    }

    private static void assertClose(float[] want, float[] got, String what) {
        double scale = 0;
        for (float v : want) scale = Math.max(scale, Math.abs(v));
        double err = maxDiff(want, got);
        assertTrue(err <= 1e-5 * Math.max(1, scale) * 10, what + ": max difference " + err + " at logit scale " + scale);
    }
}
