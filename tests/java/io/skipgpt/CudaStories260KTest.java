package io.skipgpt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.skipgpt.eval.Perplexity;
import io.skipgpt.eval.RandomGate;
import io.skipgpt.infer.Generator;
import io.skipgpt.infer.Sampler;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelLoader;
import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.StaticSkip;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CudaBackend;
import io.skipgpt.tensor.EmulatedDevice;
import io.skipgpt.tensor.GpuProbe;
import io.skipgpt.tensor.ReferenceBackend;
import io.skipgpt.tensor.Tensor;
import io.skipgpt.testing.SharedData;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The real stories260K model end to end on the GPU: the golden values (BOS logits, 40 greedy tokens, perplexity
 * 3.4071) on the CUDA backend at fp32, perplexity at TF32, and logits of dense, routed, masked-dense and batched
 * passes against the plain-Java reference backend (the GPU machine has no OpenBLAS). Each check prints one
 * "OK cuda model" line with its largest error, for the GPU results file. Without a GPU the same checks run on
 * the emulated device (the test's own logic and the model's device code paths, on the CPU kernels); only the
 * TF32 check needs the GPU.
 */
class CudaStories260KTest {
    private static final double LOGIT_RTOL = 1e-4;
    private static GpuProbe.Result gpu;
    private static LoadedModel loaded;
    private static Backend cuda;

    @BeforeAll
    static void open() throws Exception {
        gpu = GpuProbe.probe();
        cuda = gpu.available() ? CudaBackend.open(CudaBackend.Precision.FP32) : new EmulatedDevice();
    }

    @AfterAll
    static void close() {
        if (cuda != null) cuda.close();
        if (loaded != null) loaded.close();
    }

    @BeforeEach
    void needsTheModel() throws Exception {
        if (loaded == null) loaded = ModelLoader.load(SharedData.require("models/stories260K/stories260K.gguf"), null);
    }

    @Test
    void goldenValuesOnTheGpu() throws Exception {
        try (LlamaModel model = new LlamaModel(loaded.config(), loaded.weights(), cuda)) {
            double err = 0;
            try (KvCache cache = model.newCache(1); Tensor logits = Tensor.f32(1, loaded.config().vocabSize())) {
                model.forward(new int[] {1}, cache, logits);
                for (int i = 0; i < GoldenStories260KTest.BOS_LOGITS.length; i++) {
                    err = Math.max(err, Math.abs(GoldenStories260KTest.BOS_LOGITS[i] - logits.get(i)));
                }
            }
            assertTrue(err < 1e-4, "BOS logits off by " + err);
            Generator.Result r = new Generator(model, loaded.tokenizer()).generate("", 40, Sampler.greedy(), null);
            assertArrayEquals(GoldenStories260KTest.GREEDY_40, r.tokens());
            String text = Files.readString(SharedData.require("text/tinystories_valid_head.txt"));
            Perplexity.Result p = new Perplexity(model, loaded.tokenizer(), 512).score(text, null);
            assertEquals(14829, p.tokens());
            assertEquals(3.4071, p.ppl(), 2e-4);
            System.out.printf("OK %s model stories260K fp32: BOS logits max abs err %.2e, 40 greedy tokens equal,"
                    + " ppl %.4f (golden 3.4071)%n", cuda.name(), err, p.ppl());
        }
    }

    @Test
    void tf32PerplexityStaysClose() throws Exception {
        assumeTrue(gpu.available(), () -> "no GPU: " + gpu.message());
        String text = Files.readString(SharedData.require("text/tinystories_valid_head.txt"));
        try (Backend tf32 = CudaBackend.open(CudaBackend.Precision.TF32);
             LlamaModel model = new LlamaModel(loaded.config(), loaded.weights(), tf32)) {
            double ppl = new Perplexity(model, loaded.tokenizer(), 512).score(text, null).ppl();
            assertEquals(3.4071, ppl, 0.01);
            System.out.printf("OK cuda model stories260K tf32: ppl %.4f (golden 3.4071)%n", ppl);
        }
    }

    @Test
    void routedPassesMatchTheReference() {
        try (Routers routers = Routers.initialise(loaded.config().nLayers(), loaded.config().dim(), 11)) {
            compare("dense", backend -> Routing.DENSE);
            compare("routed (random routers)", backend -> Routing.routed(
                    new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0), null));
            compare("masked-dense (random routers)", backend -> new Routing(
                    new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0), Routing.Execution.MASKED_DENSE, null));
            compare("static skip attn:1,mlp:3", backend -> Routing.routed(StaticSkip.parse("attn:1,mlp:3", 5), null));
            compare("forced random 40%", backend -> Routing.routed(new RandomGate(0.4, 3), null));
        }
    }

    /** A 30-token prompt, three decode steps, then a batch of three sequences; every logit row compared. */
    private void compare(String what, Function<Backend, Routing> routingFor) {
        List<float[]> expected, actual;
        try (Backend ref = new ReferenceBackend()) {
            expected = run(ref, routingFor.apply(ref));
        }
        actual = run(cuda, routingFor.apply(cuda));
        double worst = 0;
        for (int r = 0; r < expected.size(); r++) {
            for (int i = 0; i < expected.get(r).length; i++) {
                float e = expected.get(r)[i];
                worst = Math.max(worst, Math.abs(e - actual.get(r)[i]) / Math.max(1.0, Math.abs(e)));
            }
        }
        assertTrue(worst <= LOGIT_RTOL, what + ": max relative error " + worst);
        System.out.printf("OK %s model stories260K %s: %d logit rows, max rel err %.2e%n", cuda.name(), what,
                expected.size(), worst);
    }

    private List<float[]> run(Backend backend, Routing routing) {
        int vocab = loaded.config().vocabSize();
        int[] prompt = new int[30];
        for (int i = 0; i < prompt.length; i++) prompt[i] = 1 + (i * 37) % (vocab - 1);
        List<float[]> out = new ArrayList<>();
        try (LlamaModel model = new LlamaModel(loaded.config(), loaded.weights(), backend);
             KvCache a = model.newCache(64); KvCache b = model.newCache(64); KvCache c = model.newCache(64);
             Tensor one = Tensor.f32(1, vocab); Tensor three = Tensor.f32(3, vocab)) {
            model.forward(prompt, a, one, routing);
            out.add(one.toFloatArray());
            for (int step = 0; step < 3; step++) {
                model.forward(new int[] {100 + step}, a, one, routing);
                out.add(one.toFloatArray());
            }
            model.forward(List.of(new LlamaModel.Chunk(new int[] {7}, a), new LlamaModel.Chunk(prompt, b),
                    new LlamaModel.Chunk(new int[] {1, 403, 407}, c)), three, routing);
            for (int r = 0; r < 3; r++) out.add(three.rows(r, 1).toFloatArray());
        } finally {
            if (routing.gate() instanceof RouterGate g) g.close();
        }
        return out;
    }
}
