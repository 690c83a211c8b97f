package io.skipgpt.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.routing.StaticSkip;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A batched pass over several sequences gives each sequence the logits (and cache) it gets running alone:
 * prompts of different lengths, decode steps and prompt pieces mixed in one pass, dense and routed.
 */
class BatchedForwardTest {
    // GQA group 2, untied head, head dim 10.
    static final LlamaConfig CONFIG = new LlamaConfig(40, 72, 3, 4, 2, 61, 64, 10000f, 1e-5f, false);
    static final int[][] PROMPTS = {{1, 9, 33, 60, 2, 17}, {1, 5}, {1, 40, 41, 42, 43, 44, 45, 46, 47, 3, 8}};
    static final int[][] NEXT = {{12}, {7, 30, 31}, {58}}; // second pass: decode, prompt piece, decode
    static final int[] LAST = {4, 59, 21}; // third pass: a decode step of every sequence
    static final int[][] MIXED = {{9}, {14, 15}, {3}}; // fourth pass, as a server orders it: steps of 0 and 2, then 1's piece
    static final int[] MIXED_ORDER = {0, 2, 1};
    static LlamaWeights weights;
    static Backend backend;
    static LlamaModel model;

    @BeforeAll
    static void build() {
        weights = RandomWeights.create(CONFIG, 21);
        backend = new CpuBackend();
        model = new LlamaModel(CONFIG, weights, backend);
    }

    @AfterAll
    static void free() {
        model.close();
        backend.close();
        weights.close();
    }

    @Test
    void denseBatchEqualsEachAlone() {
        compare(stats -> new Routing(io.skipgpt.routing.Gate.DENSE, Routing.Execution.ROUTED, stats));
    }

    @Test
    void routedBatchEqualsEachAlone() {
        try (Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 3)) {
            RoutingStats stats = compare(s -> Routing.routed(
                    new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0), s));
            assertTrue(stats.moduleSparsity() > 0.1 && stats.moduleSparsity() < 0.9,
                    "random routers should skip some modules, not all: " + stats.moduleSparsity());
        }
    }

    /** A static skip: whole layers' attention or MLP skipped by every row, so some passes keep no row at all. */
    @Test
    void staticSkipBatchEqualsEachAlone() {
        RoutingStats stats = compare(s -> Routing.routed(StaticSkip.parse("attn:1,mlp:0,mlp:2", CONFIG.nLayers()), s));
        assertEquals(0.0, stats.attnKeep()[1], 0.0);
        assertEquals(1.0, stats.attnKeep()[0], 0.0);
    }

    @Test
    void maskedDenseBatchEqualsEachAlone() {
        try (Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 4)) {
            compare(s -> new Routing(new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0),
                    Routing.Execution.MASKED_DENSE, s));
        }
    }

    @Test
    void rejectsSharedCachesAndMisfitLogits() {
        try (KvCache a = model.newCache(8); KvCache b = model.newCache(2);
                Tensor logits = Tensor.f32(2, CONFIG.vocabSize())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> model.forward(
                    List.of(new LlamaModel.Chunk(new int[] {1}, a), new LlamaModel.Chunk(new int[] {2}, a)),
                    logits, Routing.DENSE));
            assertTrue(e.getMessage().contains("share"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> model.forward(
                    List.of(new LlamaModel.Chunk(new int[] {1}, a), new LlamaModel.Chunk(new int[] {1, 2, 3}, b)),
                    logits, Routing.DENSE));
            assertTrue(e.getMessage().contains("capacity"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> model.forward(
                    List.of(new LlamaModel.Chunk(new int[] {1, 2}, a, 2)), logits.rows(0, 1), Routing.DENSE));
            assertTrue(e.getMessage().contains("do not fit"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new LlamaModel.Chunk(new int[] {1}, a, 2));
            assertTrue(e.getMessage().contains("logit rows"), e.getMessage());
            assertEquals(0, a.length(), "a rejected pass leaves the caches as they were");
        }
    }

    /**
     * Pass 1 prefills all prompts in one batch (logits of the last row each); pass 2 continues them with NEXT
     * (the middle one a three-token piece asking for two logit rows); pass 3 is a decode step of all three; pass 4
     * two decode steps then a prompt piece. Every pass must match each sequence alone, with caches made one by one
     * and with one group of caches (whose decode steps run one attention call), and the routing statistics of the
     * batch must equal the sum of the single runs.
     */
    private RoutingStats compare(Function<RoutingStats, Routing> routingFor) {
        int s = PROMPTS.length;
        RoutingStats aloneStats = new RoutingStats(CONFIG);
        List<float[][]> alone = new ArrayList<>();
        for (int i = 0; i < s; i++) {
            try (KvCache cache = model.newCache(32); Tensor first = Tensor.f32(1, CONFIG.vocabSize());
                    Tensor second = Tensor.f32(rowsOf(i), CONFIG.vocabSize());
                    Tensor third = Tensor.f32(1, CONFIG.vocabSize()); Tensor fourth = Tensor.f32(1, CONFIG.vocabSize())) {
                Routing routing = routingFor.apply(aloneStats);
                model.forward(PROMPTS[i], cache, first, routing);
                model.forward(NEXT[i], cache, second, routing);
                model.forward(new int[] {LAST[i]}, cache, third, routing);
                model.forward(MIXED[i], cache, fourth, routing);
                float[][] rows = new float[3 + rowsOf(i)][];
                rows[0] = first.toFloatArray();
                for (int r = 0; r < rowsOf(i); r++) rows[1 + r] = second.rows(r, 1).toFloatArray();
                rows[1 + rowsOf(i)] = third.toFloatArray();
                rows[2 + rowsOf(i)] = fourth.toFloatArray();
                alone.add(rows);
            }
        }
        RoutingStats batchStats = null;
        for (boolean grouped : new boolean[] {false, true}) {
            batchStats = new RoutingStats(CONFIG);
            List<KvCache> caches = new ArrayList<>();
            if (grouped) caches.addAll(model.newCaches(s, 32));
            else for (int i = 0; i < s; i++) caches.add(model.newCache(32));
            String kind = grouped ? "grouped caches, " : "separate caches, ";
            try (Tensor first = Tensor.f32(s, CONFIG.vocabSize()); Tensor second = Tensor.f32(s + 1, CONFIG.vocabSize());
                    Tensor third = Tensor.f32(s, CONFIG.vocabSize()); Tensor fourth = Tensor.f32(s, CONFIG.vocabSize())) {
                Routing routing = routingFor.apply(batchStats);
                List<LlamaModel.Chunk> pass1 = new ArrayList<>(), pass2 = new ArrayList<>(), pass3 = new ArrayList<>();
                for (int i = 0; i < s; i++) {
                    pass1.add(new LlamaModel.Chunk(PROMPTS[i], caches.get(i)));
                    pass2.add(new LlamaModel.Chunk(NEXT[i], caches.get(i), rowsOf(i)));
                    pass3.add(new LlamaModel.Chunk(new int[] {LAST[i]}, caches.get(i)));
                }
                model.forward(pass1, first, routing);
                model.forward(pass2, second, routing);
                model.forward(pass3, third, routing);
                List<LlamaModel.Chunk> pass4 = new ArrayList<>();
                for (int i : MIXED_ORDER) pass4.add(new LlamaModel.Chunk(MIXED[i], caches.get(i)));
                model.forward(pass4, fourth, routing);
                for (int i = 0, row = 0; i < s; i++) {
                    assertEquals(PROMPTS[i].length + NEXT[i].length + 1 + MIXED[i].length, caches.get(i).length());
                    assertClose(alone.get(i)[0], first.rows(i, 1).toFloatArray(), kind + "sequence " + i + " after its prompt");
                    for (int r = 0; r < rowsOf(i); r++, row++) {
                        assertClose(alone.get(i)[1 + r], second.rows(row, 1).toFloatArray(),
                                kind + "sequence " + i + ", pass 2 row " + r);
                    }
                    assertClose(alone.get(i)[1 + rowsOf(i)], third.rows(i, 1).toFloatArray(),
                            kind + "sequence " + i + ", decode step");
                    int mixedRow = Arrays.stream(MIXED_ORDER).boxed().toList().indexOf(i);
                    assertClose(alone.get(i)[2 + rowsOf(i)], fourth.rows(mixedRow, 1).toFloatArray(),
                            kind + "sequence " + i + ", steps before a piece");
                }
            } finally {
                caches.forEach(KvCache::close);
            }
            assertEquals(aloneStats.tokens(), batchStats.tokens());
            assertArrayEquals(aloneStats.attnKeep(), batchStats.attnKeep(), 1e-12);
            assertArrayEquals(aloneStats.mlpKeep(), batchStats.mlpKeep(), 1e-12);
            assertEquals(aloneStats.flopSaving(), batchStats.flopSaving(), 1e-12);
        }
        return batchStats;
    }

    private static int rowsOf(int sequence) {
        return sequence == 1 ? 2 : 1;
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        double max = 0;
        for (int i = 0; i < expected.length; i++) {
            max = Math.max(max, Math.abs(expected[i] - actual[i]) / Math.max(1.0, Math.abs(expected[i])));
        }
        assertTrue(max <= 1e-5, what + ": max relative error " + max);
    }
}
