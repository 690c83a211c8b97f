package io.skipgpt.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.routing.StaticSkip;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.EmulatedDevice;
import io.skipgpt.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;

/**
 * The model on a device backend: the emulated device runs the CPU kernels on device-tagged tensors, so every
 * logit must equal the CPU backend's bit for bit, while any host access to a device tensor (weights, caches,
 * activations, router logits) throws. Dense, routed, masked-dense and static-skip runs, one sequence and a batch,
 * logits on the host and on the device; the copies per pass are counted and nothing is left allocated.
 */
class DeviceModelTest {
    static final LlamaConfig CONFIG = BatchedForwardTest.CONFIG;
    static final int[][] PROMPTS = BatchedForwardTest.PROMPTS;
    static final int[][] NEXT = BatchedForwardTest.NEXT;
    static final int[] LAST = BatchedForwardTest.LAST;

    @Test
    void denseMatchesTheCpu() {
        compare((routers, backend) -> Routing.DENSE);
    }

    @Test
    void routedMatchesTheCpu() {
        RoutingStats[] stats = {new RoutingStats(CONFIG), new RoutingStats(CONFIG)};
        int[] run = {0};
        compare((routers, backend) -> Routing.routed(
                new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0), stats[run[0]++]));
        assertTrue(stats[0].moduleSparsity() > 0.1, "random routers skip some modules: " + stats[0].moduleSparsity());
        assertArrayEquals(stats[0].attnKeep(), stats[1].attnKeep(), 0.0);
        assertArrayEquals(stats[0].mlpKeep(), stats[1].mlpKeep(), 0.0);
    }

    @Test
    void maskedDenseMatchesTheCpu() {
        compare((routers, backend) -> new Routing(new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0),
                Routing.Execution.MASKED_DENSE, null));
    }

    @Test
    void staticSkipMatchesTheCpu() {
        compare((routers, backend) -> Routing.routed(StaticSkip.parse("attn:1,mlp:2", CONFIG.nLayers()), null));
    }

    /**
     * One decode step with routers and host logits costs one upload each for ids and positions, per layer the
     * router gates down, and the logits down: a single row runs a module or not (nothing to compact), and its
     * logits row needs no gather.
     */
    @Test
    void copiesPerDecodeStepAreBounded() {
        try (LlamaWeights weights = RandomWeights.create(CONFIG, 21);
             Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 3);
             EmulatedDevice device = new EmulatedDevice()) {
            try (LlamaModel model = new LlamaModel(CONFIG, weights, device);
                 RouterGate gate = new RouterGate(routers, device, RouterGate.Mode.DETERMINISTIC, 0);
                 KvCache cache = model.newCache(16); Tensor logits = Tensor.f32(1, CONFIG.vocabSize())) {
                Routing routing = Routing.routed(gate, null);
                model.forward(PROMPTS[0], cache, logits, routing);
                long up = device.uploads(), down = device.downloads();
                model.forward(new int[] {5}, cache, logits, routing);
                int layers = CONFIG.nLayers();
                assertEquals(layers + 1, device.downloads() - down, "router gates per layer, then the logits");
                assertEquals(2, device.uploads() - up, "ids and positions");
            }
            assertEquals(0, device.liveTensors(), "the model, its caches and the gate free what they allocated");
        }
    }

    /**
     * A batched decode step over one group of caches launches one attention and two scatters (keys, values) per
     * layer, where caches made one by one take an attention and two copies per sequence; its uploads are the ids
     * and one int tensor of positions, start rows and cache rows. Decode steps before a prompt piece share a call.
     */
    @Test
    void aDecodeStepOfGroupedCachesAttendsOnceALayer() {
        int layers = CONFIG.nLayers(), s = PROMPTS.length;
        try (LlamaWeights weights = RandomWeights.create(CONFIG, 21); EmulatedDevice device = new EmulatedDevice()) {
            try (LlamaModel model = new LlamaModel(CONFIG, weights, device);
                 Tensor logits = Tensor.f32(s, CONFIG.vocabSize())) {
                for (boolean grouped : new boolean[] {false, true}) {
                    List<KvCache> caches = new ArrayList<>();
                    if (grouped) caches.addAll(model.newCaches(s, 32));
                    else for (int i = 0; i < s; i++) caches.add(model.newCache(32));
                    List<LlamaModel.Chunk> prompts = new ArrayList<>(), step = new ArrayList<>();
                    for (int i = 0; i < s; i++) {
                        prompts.add(new LlamaModel.Chunk(PROMPTS[i], caches.get(i)));
                        step.add(new LlamaModel.Chunk(new int[] {LAST[i]}, caches.get(i)));
                    }
                    model.forward(prompts, logits, Routing.DENSE);
                    long attention = device.calls("attention"), copies = device.calls("copy");
                    long scatters = device.calls("scatterRows"), up = device.uploads();
                    model.forward(step, logits, Routing.DENSE);
                    String kind = grouped ? "grouped caches: " : "separate caches: ";
                    assertEquals(grouped ? layers : layers * s, device.calls("attention") - attention, kind + "attention");
                    assertEquals(grouped ? 0 : 2 * layers * s, device.calls("copy") - copies, kind + "copies into caches");
                    assertEquals(grouped ? 2 * layers : 0, device.calls("scatterRows") - scatters, kind + "scatters");
                    assertEquals(2, device.uploads() - up, kind + "ids and per-row indices");
                    // as a server orders a pass: two decode steps, then a prompt piece (its own call)
                    List<LlamaModel.Chunk> mixed = new ArrayList<>();
                    for (int i : BatchedForwardTest.MIXED_ORDER) {
                        mixed.add(new LlamaModel.Chunk(BatchedForwardTest.MIXED[i], caches.get(i)));
                    }
                    attention = device.calls("attention");
                    model.forward(mixed, logits, Routing.DENSE);
                    assertEquals(grouped ? 2 * layers : layers * s, device.calls("attention") - attention,
                            kind + "attention of two steps and a piece");
                    caches.forEach(KvCache::close);
                }
            }
            assertEquals(0, device.liveTensors(), "grouped caches free their memory with the last of them");
        }
    }

    /** A group's memory stays while any of its caches is open (closing one twice does nothing), and goes with the last. */
    @Test
    void groupedCachesFreeTheirMemoryWithTheLast() {
        try (LlamaWeights weights = RandomWeights.create(CONFIG, 21); EmulatedDevice device = new EmulatedDevice()) {
            try (LlamaModel model = new LlamaModel(CONFIG, weights, device);
                 Tensor logits = Tensor.f32(1, CONFIG.vocabSize())) {
                try (KvCache warm = model.newCache(16)) {
                    model.forward(PROMPTS[0], warm, logits); // the workspace is allocated from here on
                }
                int before = device.liveTensors();
                List<KvCache> caches = model.newCaches(3, 16);
                assertEquals(before + 2 * CONFIG.nLayers(), device.liveTensors(), "keys and values of each layer, once");
                caches.get(0).close();
                caches.get(0).close();
                assertEquals(before + 2 * CONFIG.nLayers(), device.liveTensors(), "two caches of the group still open");
                model.forward(PROMPTS[1], caches.get(1), logits);
                caches.get(1).close();
                assertEquals(before + 2 * CONFIG.nLayers(), device.liveTensors(), "one cache of the group still open");
                caches.get(2).close();
                assertEquals(before, device.liveTensors(), "the last cache closed frees the group");
            }
        }
    }

    /**
     * Runs the same work on the CPU backend and on the emulated device: each prompt alone then its next tokens,
     * and all prompts as one batch then their next tokens and a decode step (the batch with logits on the
     * device), with caches made one by one and as one group.
     */
    private static void compare(BiFunction<Routers, Backend, Routing> routingFor) {
        try (LlamaWeights weights = RandomWeights.create(CONFIG, 21);
             Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 3)) {
            List<float[]> cpu, device;
            try (CpuBackend backend = new CpuBackend()) {
                cpu = run(weights, backend, routingFor.apply(routers, backend));
            }
            try (EmulatedDevice backend = new EmulatedDevice()) {
                device = run(weights, backend, routingFor.apply(routers, backend));
            }
            assertEquals(cpu.size(), device.size());
            for (int i = 0; i < cpu.size(); i++) assertArrayEquals(cpu.get(i), device.get(i), "logits " + i);
        }
    }

    private static List<float[]> run(LlamaWeights weights, Backend backend, Routing routing) {
        List<float[]> out = new ArrayList<>();
        try (LlamaModel model = new LlamaModel(CONFIG, weights, backend)) {
            for (int s = 0; s < PROMPTS.length; s++) {
                try (KvCache cache = model.newCache(32); Tensor logits = Tensor.f32(1, CONFIG.vocabSize())) {
                    model.forward(PROMPTS[s], cache, logits, routing);
                    out.add(logits.toFloatArray());
                    model.forward(NEXT[s], cache, logits, routing);
                    out.add(logits.toFloatArray());
                }
            }
            for (boolean grouped : new boolean[] {false, true}) {
                List<KvCache> caches = new ArrayList<>();
                if (grouped) caches.addAll(model.newCaches(PROMPTS.length, 32));
                else for (int s = 0; s < PROMPTS.length; s++) caches.add(model.newCache(32));
                try (Tensor logits = backend.allocate(Tensor.DType.F32, PROMPTS.length, CONFIG.vocabSize())) {
                    List<LlamaModel.Chunk> first = new ArrayList<>(), second = new ArrayList<>(), third = new ArrayList<>();
                    for (int s = 0; s < PROMPTS.length; s++) {
                        first.add(new LlamaModel.Chunk(PROMPTS[s], caches.get(s)));
                        second.add(new LlamaModel.Chunk(NEXT[s], caches.get(s)));
                        third.add(new LlamaModel.Chunk(new int[] {LAST[s]}, caches.get(s)));
                    }
                    for (List<LlamaModel.Chunk> pass : List.of(first, second, third)) {
                        model.forward(pass, logits, routing);
                        try (Tensor host = backend.download(logits)) {
                            out.add(host.toFloatArray());
                        }
                    }
                } finally {
                    caches.forEach(KvCache::close);
                }
            }
        } finally {
            routing.close();
        }
        return out;
    }
}
