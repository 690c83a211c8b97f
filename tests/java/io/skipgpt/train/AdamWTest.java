package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.EmulatedDevice;
import io.skipgpt.tensor.Tensor;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class AdamWTest {
    private static final Backend CPU = new CpuBackend();

    @Test
    void threeStepsByHand() {
        try (Tensor w = Tensor.of(new float[] {1f, -2f}, 1, 2);
                Tensor gw = Tensor.f32(1, 2);
                Tensor b = Tensor.of(new float[] {0.5f}, 1);
                Tensor gb = Tensor.f32(1);
                AdamW opt = new AdamW(CPU, List.of(AdamW.Param.of("w", w, gw), AdamW.Param.of("b", b, gb)),
                        AdamW.Config.DEFAULT)) {
            // Step 1, lr 0.1: m = 0.1 g, v = 0.001 g^2, so m/(1-0.9) / sqrt(v/(1-0.999)) = sign(g) and the update is
            // lr * |g| / (|g| + eps). The matrix w is also decayed by (1 - lr * 0.01); the vector b is not:
            // w0 = 1 * 0.999 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.899000002, b = 0.5 - 0.1 * 2 / (2 + 1e-8) = 0.4000000005.
            gw.copyFrom(new float[] {0.5f, -1f});
            gb.copyFrom(new float[] {2f});
            opt.step(0.1);
            assertClose(new double[] {0.899000002, -1.898000001}, w);
            assertClose(new double[] {0.4000000005}, b);
            assertEquals(1, opt.steps());

            // Steps 2 and 3 (values from the same formulas in double precision).
            gw.copyFrom(new float[] {-0.25f, 0.5f});
            opt.step(0.05);
            assertClose(new double[] {0.8852336503529232, -1.8837341491849517}, w);
            assertClose(new double[] {0.3500000007500004}, b);
            gw.copyFrom(new float[] {0.1f, 0f});
            gb.copyFrom(new float[] {-1f});
            opt.step(0.1);
            assertClose(new double[] {0.8528240610204401, -1.8612624849963142}, w);
            assertClose(new double[] {0.29843466046923006}, b);
            assertEquals(3, opt.steps());
            Map<String, Tensor> state = opt.state();
            assertClose(new double[] {0.028, -0.036}, state.get("optimizer.w.exp_avg"));
            assertClose(new double[] {0.0003219377500000003, 0.0012477510000000012}, state.get("optimizer.w.exp_avg_sq"));
            state.values().forEach(Tensor::close);
        }
    }

    @Test
    void convergesOnAnIllConditionedQuadratic() {
        // f(x) = 0.5 * sum a_i (x_i - c_i)^2 with curvatures over four decades; Adam's per-coordinate scaling copes.
        float[] a = {100f, 1f, 0.1f, 0.01f, 3f};
        float[] c = {1f, -2f, 0.5f, 3f, -0.25f};
        int steps = 2000;
        LrSchedule schedule = LrSchedule.cosine(0.05, 20, steps);
        try (Tensor x = Tensor.f32(a.length);
                Tensor g = Tensor.f32(a.length);
                AdamW opt = new AdamW(CPU, List.of(new AdamW.Param("x", x, g, false)), AdamW.Config.DEFAULT)) {
            for (int s = 0; s < steps; s++) {
                for (int i = 0; i < a.length; i++) g.set(i, a[i] * (x.get(i) - c[i]));
                opt.step(schedule.lr(s));
            }
            for (int i = 0; i < a.length; i++) assertEquals(c[i], x.get(i), 1e-3, "coordinate " + i);
        }
    }

    @Test
    void gradNormIsTheGlobalNormAndClipFactorPyTorchs() {
        try (Tensor w1 = Tensor.f32(2); Tensor g1 = Tensor.of(new float[] {3f, 4f}, 2);
                Tensor w2 = Tensor.f32(1, 1); Tensor g2 = Tensor.of(new float[] {12f}, 1, 1);
                AdamW opt = new AdamW(CPU, List.of(AdamW.Param.of("a", w1, g1), AdamW.Param.of("b", w2, g2)),
                        AdamW.Config.DEFAULT)) {
            assertEquals(13.0, opt.gradNorm(), 1e-12);
            g2.set(0, Float.NaN);
            assertTrue(Double.isNaN(opt.gradNorm()));
        }
        assertEquals(1.0, AdamW.clipFactor(13, 100));
        assertEquals(6.5 / (13 + 1e-6), AdamW.clipFactor(13, 6.5));
        assertEquals(1.0, AdamW.clipFactor(Double.NaN, 1), "a non-finite norm is the caller's to handle");
    }

    /** A gradient scale folded into the step is the step on the gradient scaled in place first (and rounded to float). */
    @Test
    void aScaledStepIsAStepOnTheScaledGradient() {
        float[] init = {0.3f, -1.2f, 2.5f, 0.01f, -0.7f, 1.1f};
        double scale = AdamW.clipFactor(7.3, 1.0) / 3;
        try (Tensor w1 = Tensor.of(init, 2, 3); Tensor g1 = Tensor.f32(2, 3);
                Tensor w2 = Tensor.of(init, 2, 3); Tensor g2 = Tensor.f32(2, 3);
                AdamW folded = new AdamW(CPU, List.of(AdamW.Param.of("w", w1, g1)), AdamW.Config.DEFAULT);
                AdamW inPlace = new AdamW(CPU, List.of(AdamW.Param.of("w", w2, g2)), AdamW.Config.DEFAULT)) {
            Rng rng = new Rng(5);
            for (int s = 0; s < 3; s++) {
                fill(g1, rng);
                for (int i = 0; i < g2.size(); i++) g2.set(i, (float) (g1.get(i) * scale));
                folded.step(0.01, scale);
                inPlace.step(0.01);
            }
            assertArrayEquals(w2.toFloatArray(), w1.toFloatArray());
            g1.set(3, Float.NaN);
            folded.zeroGrad();
            assertArrayEquals(new float[6], g1.toFloatArray());
        }
    }

    /** On a device backend the update, the norm, zeroGrad and the state give the host's bits; the moments stay there. */
    @Test
    void onADeviceTheHostsBits() {
        float[] init = {0.3f, -1.2f, 2.5f, 0.01f, -0.7f, 1.1f};
        try (EmulatedDevice dev = new EmulatedDevice(); Tensor w = Tensor.of(init, 2, 3); Tensor g = Tensor.f32(2, 3);
                Tensor dw = dev.upload(w); Tensor dg = dev.allocate(Tensor.DType.F32, 2, 3);
                AdamW host = new AdamW(CPU, List.of(AdamW.Param.of("w", w, g)), AdamW.Config.DEFAULT);
                AdamW device = new AdamW(dev, List.of(AdamW.Param.of("w", dw, dg)), AdamW.Config.DEFAULT)) {
            Rng rng = new Rng(7);
            for (int s = 0; s < 3; s++) {
                fill(g, rng);
                dev.copy(dg, g);
                assertEquals(host.gradNorm(), device.gradNorm());
                host.step(0.01, 0.5);
                device.step(0.01, 0.5);
                host.zeroGrad();
                device.zeroGrad();
            }
            long downloads = dev.downloads();
            try (Tensor back = dev.download(dw); Tensor grad = dev.download(dg)) {
                assertArrayEquals(w.toFloatArray(), back.toFloatArray());
                assertArrayEquals(new float[6], grad.toFloatArray());
            }
            assertEquals(3, downloads, "one download per gradient norm");
            Map<String, Tensor> hostState = host.state(), deviceState = device.state();
            hostState.forEach((name, t) -> assertArrayEquals(t.toFloatArray(), deviceState.get(name).toFloatArray(), name));
            hostState.values().forEach(Tensor::close);
            deviceState.values().forEach(Tensor::close);
        }
    }

    @Test
    void restoredStateContinuesBitExactly() {
        float[] init = {0.3f, -1.2f, 2.5f, 0.01f, -0.7f, 1.1f};
        try (Tensor w1 = Tensor.of(init, 2, 3); Tensor g1 = Tensor.f32(2, 3);
                Tensor w2 = Tensor.f32(2, 3); Tensor g2 = Tensor.f32(2, 3);
                AdamW first = new AdamW(CPU, List.of(AdamW.Param.of("w", w1, g1)), AdamW.Config.DEFAULT);
                AdamW second = new AdamW(CPU, List.of(AdamW.Param.of("w", w2, g2)), AdamW.Config.DEFAULT)) {
            Rng rng = new Rng(3);
            for (int s = 0; s < 3; s++) {
                fill(g1, rng);
                first.step(0.01);
            }
            // "Checkpoint": copies of the parameter and the moments, then a fresh optimizer takes them over.
            Map<String, Tensor> saved = first.state();
            w2.copyFrom(w1);
            second.loadState(saved, first.steps());
            saved.values().forEach(Tensor::close);
            for (int s = 0; s < 3; s++) {
                fill(g1, rng);
                g2.copyFrom(g1);
                first.step(0.01);
                second.step(0.01);
            }
            assertArrayEquals(w1.toFloatArray(), w2.toFloatArray());
            assertEquals(6, second.steps());
        }
    }

    @Test
    void rejectsMismatchedShapesDuplicateNamesAndMissingState() {
        try (Tensor w = Tensor.f32(2, 3); Tensor g = Tensor.f32(3, 2); Tensor g2 = Tensor.f32(2, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AdamW.Param.of("w", w, g));
            assertTrue(e.getMessage().contains("w: gradient shape [3, 2]"), e.getMessage());
            AdamW.Param p = AdamW.Param.of("w", w, g2);
            assertThrows(IllegalArgumentException.class, () -> new AdamW(CPU, List.of(p, p), AdamW.Config.DEFAULT));
            try (AdamW opt = new AdamW(CPU, List.of(p), AdamW.Config.DEFAULT)) {
                e = assertThrows(IllegalArgumentException.class, () -> opt.loadState(Map.of(), 4));
                assertTrue(e.getMessage().contains("optimizer.w.exp_avg"), e.getMessage());
            }
        }
        try (Tensor bias = Tensor.f32(2); Tensor grad = Tensor.f32(2)) {
            assertFalse(AdamW.Param.of("bias", bias, grad).decay());
        }
    }

    private static void fill(Tensor t, Rng rng) {
        for (int i = 0; i < t.size(); i++) t.set(i, (float) (rng.nextDouble() * 2 - 1));
    }

    private static void assertClose(double[] expected, Tensor actual) {
        assertEquals(expected.length, actual.size());
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual.get(i), 1e-6 * Math.abs(expected[i]) + 1e-9, "element " + i);
        }
    }
}
