package io.skipgpt.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.Gate;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class BenchTest {
    static final LlamaConfig CONFIG = StaticSkipSearchTest.CONFIG;

    @Test
    void randomGateKeepsAtTheTargetRateAndRepeatsItself() {
        int n = 20000;
        boolean[] a1 = new boolean[n], m1 = new boolean[n], a2 = new boolean[n], m2 = new boolean[n];
        try (Tensor x = Tensor.f32(n, 4)) {
            new RandomGate(0.3, 5).decide(0, x, a1, m1);
            new RandomGate(0.3, 5).decide(0, x, a2, m2);
        }
        assertArrayEquals(a1, a2);
        assertArrayEquals(m1, m2);
        int kept = 0;
        for (int i = 0; i < n; i++) kept += (a1[i] ? 1 : 0) + (m1[i] ? 1 : 0);
        assertEquals(0.7, kept / (2.0 * n), 0.01);
    }

    @Test
    void everyRepetitionOfARoutedVariantMakesTheSameDecisions() {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 4); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(CONFIG, w, b)) {
            Bench.Variant random = new Bench.Variant("random", () -> new RandomGate(0.4, 11));
            List<Bench.Result> pp = new Bench(model, 1).prefill(List.of(Bench.Variant.DENSE, random), 24, 1, 3);
            assertEquals(2, pp.size());
            Bench.Result dense = pp.get(0), routed = pp.get(1);
            assertEquals(3 * 24, routed.stats().tokens(), "timed repetitions only");
            assertEquals(0.0, dense.stats().moduleSparsity());
            assertEquals(1.0, dense.stats().flopBound());
            assertEquals(1.0, dense.modelBound(), 1e-12);
            // one pass with a fresh gate of the same seed realises the same pattern as the three timed ones together
            RoutingStats once = new RoutingStats(CONFIG);
            try (KvCache cache = model.newCache(24)) {
                model.forward(new int[24], cache, null, Routing.routed(new RandomGate(0.4, 11), once));
            }
            assertEquals(once.moduleSparsity(), routed.stats().moduleSparsity(), 1e-12);
            assertArrayEquals(once.attnKeep(), routed.stats().attnKeep(), 1e-12);
            // the output head is never skipped: the whole-pass bound lies between 1 and the layers' bound
            assertTrue(routed.stats().flopBound() > 1);
            assertTrue(routed.modelBound() > 1 && routed.modelBound() < routed.stats().flopBound());
            Bench.Figures f = routed.figures();
            assertEquals("pp24", f.label());
            assertTrue(f.min() <= f.median() && f.median() <= f.max() && f.min() > 0);
            List<Bench.Result> tg = new Bench(model, 1).decode(List.of(Bench.Variant.DENSE, random), 5, 0, 1);
            assertEquals(5, tg.get(1).stats().tokens());
            assertEquals("tg5", tg.get(1).figures().label());
        }
    }

    /** A repetition of 0.1 s or more has CPU figures: a share of the cores, and the rate per CPU second to match. */
    @Test
    void aLongEnoughRepetitionHasCpuFiguresThatAgreeWithItsRate() {
        assumeFalse(Double.isNaN(ProcessCpu.seconds()), "no /proc/self/stat here");
        // a gate that keeps every row but first works for 0.1 s, so that its pass is long enough however fast
        Gate slow = (layer, x, keepAttn, keepMlp) -> {
            long until = System.nanoTime() + 100_000_000L;
            while (layer == 0 && System.nanoTime() < until) Thread.onSpinWait();
            Gate.DENSE.decide(layer, x, keepAttn, keepMlp);
        };
        try (LlamaWeights w = RandomWeights.create(CONFIG, 4); Backend b = new CpuBackend();
                LlamaModel model = new LlamaModel(CONFIG, w, b)) {
            Bench.Figures f = new Bench(model, 1).prefill(List.of(new Bench.Variant("slow", () -> slow)), 8, 0, 1)
                    .get(0).figures();
            int cores = Runtime.getRuntime().availableProcessors();
            double wall = 8 / f.median(), cpu = f.cpuShare() * wall * cores;
            // user and system time are each read in whole ticks: the difference of two readings overstates by < 2 ticks
            assertTrue(cpu >= 0 && cpu < wall * cores + 0.02, cpu + " CPU s in " + wall + " s on " + cores + " cores");
            assertEquals(f.median() / f.perCpuSecond(), f.cpuShare() * cores, 1e-9 * f.cpuShare() * cores);
        }
    }

    @Test
    void processCpuTimeGrowsWithWork() {
        double before = ProcessCpu.seconds();
        assumeFalse(Double.isNaN(before), "no /proc/self/stat here");
        // busy until 0.1 CPU seconds are counted (however busy the machine), or give up after 30 s of wall time
        long deadline = System.nanoTime() + 30_000_000_000L;
        double x = 0;
        while (ProcessCpu.seconds() - before < 0.1 && System.nanoTime() < deadline) {
            for (int i = 0; i < 100_000; i++) x += Math.sqrt(x + 1);
        }
        assertTrue(x > 0);
        assertTrue(ProcessCpu.seconds() - before >= 0.1, "CPU time did not grow with work");
    }

    @Test
    void denseFlopsCountWeightsTwiceAndAttentionPerKey() {
        // dim 16, q 16, kv 8, hidden 24, 3 layers: per token 2*16*16*2 + 2*16*8*2 + 6*16*24 = 3840; per key 4*16
        RoutingStats stats = new RoutingStats(CONFIG);
        for (int l = 0; l < 3; l++) stats.record(l, 10, 4, 7, 55, 20);
        assertEquals(3 * (10 * 3840.0 + 64.0 * 55), stats.denseFlops(), 1e-9);
        // executed: K and V of every row, Q and O of 4, attention over 20 keys, the MLP of 7
        assertEquals(3 * (10 * 512.0 + 4 * 1024.0 + 64.0 * 20 + 7 * 2304.0), stats.executedFlops(), 1e-9);
    }
}
