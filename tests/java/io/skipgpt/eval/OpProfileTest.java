package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.Tensor;
import java.util.Map;
import org.junit.jupiter.api.Test;

class OpProfileTest {
    @Test
    void timesEveryOpAndChangesNoResult() {
        LlamaConfig c = StaticSkipSearchTest.CONFIG;
        int[] ids = {1, 9, 4, 33, 7};
        OpProfile profile = new OpProfile();
        try (LlamaWeights w = RandomWeights.create(c, 6); Backend cpu = new CpuBackend();
                LlamaModel plain = new LlamaModel(c, w, cpu); LlamaModel timed = new LlamaModel(c, w, profile.wrap(cpu));
                KvCache k1 = plain.newCache(5); KvCache k2 = timed.newCache(5);
                Tensor a = Tensor.f32(5, c.vocabSize()); Tensor b = Tensor.f32(5, c.vocabSize())) {
            plain.forward(ids, k1, a);
            timed.forward(ids, k2, b);
            assertArrayEquals(a.toFloatArray(), b.toFloatArray());
            Map<String, Double> ms = profile.millis();
            // per layer: q and o (16x16), k and v (8x16), gate and up (24x16), down (16x24); the tied head (40x16)
            for (String op : new String[] {"matmul 16x16", "matmul 8x16", "matmul 24x16", "matmul 16x24", "matmul 40x16",
                    "rmsnorm", "rope", "attention", "swiglu", "embedding", "add"}) {
                assertTrue(ms.containsKey(op) && ms.get(op) >= 0, op + " in " + ms);
            }
            double previous = Double.MAX_VALUE;
            for (double v : ms.values()) {
                assertTrue(v <= previous, "largest first: " + ms);
                previous = v;
            }
            profile.reset();
            assertEquals(0, profile.millis().size());
            // errors of the wrapped backend come through as they are
            Backend wrapped = profile.wrap(cpu);
            assertThrows(IllegalArgumentException.class, () -> wrapped.add(a, Tensor.f32(2, 2)));
            assertEquals("cpu", wrapped.name());
        }
    }
}
