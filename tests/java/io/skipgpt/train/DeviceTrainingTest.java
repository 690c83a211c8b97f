package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.EmulatedDevice;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Both trainers on a device backend without a GPU: {@link EmulatedDevice} keeps "device" tensors in host memory, runs
 * the CPU kernels on them and refuses every host access, so a pass that reads a device tensor from Java fails here.
 * Twenty steps of each stage give the CPU run's losses and parameters (the same kernels: bit for bit), a run resumes
 * from its checkpoint on the device, every device tensor is freed, and the host-device copies stay a few per
 * sequence and step (a copy per layer, per element or per row would show at once), and a few per held-out example.
 */
class DeviceTrainingTest {
    static final LlamaConfig CONFIG = RouterTrainerTest.CONFIG;
    static final int STEPS = 20, BATCH = 3, ACCUM = 2, CHECKPOINTS = 2; // every 10 steps

    // One step more than the runs take, so that none reaches the final evaluation (see TrainingRuns).
    static RouterTrainer.Options routerOptions() {
        return new RouterTrainer.Options(0.5, 8, false, new Optimization(STEPS + 1, BATCH, ACCUM, 5e-2, "cosine", 1, 0.01, 1.0, 7, 0, 10));
    }

    static LoraTrainer.Options loraOptions() {
        return new LoraTrainer.Options(LoraTrainerTest.LORA, LoraTrainer.Gates.SAMPLE, new Optimization(STEPS + 1, BATCH, ACCUM, 1e-2, "cosine", 1, 0.0, 1.0, 7, 0, 10));
    }

    @Test
    void routerTuningOnTheDeviceIsTheCpuRun(@TempDir Path dir) throws Exception {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 1); Backend cpu = new CpuBackend();
                EmulatedDevice dev = new EmulatedDevice()) {
            TrainingRuns.Run host = TrainingRuns.routers(CONFIG, w, cpu, RouterTrainerTest.data(dir), routerOptions(),
                    dir.resolve("cpu"), STEPS, false);
            TrainingRuns.Run device = TrainingRuns.routers(CONFIG, w, dev, RouterTrainerTest.data(dir), routerOptions(),
                    dir.resolve("device"), STEPS, false);
            assertSameRun(host, device);
            // Down: per sequence its losses and its gates; per step the gradient norm; per checkpoint the router
            // weight and bias and their moments. Up: per sequence its ids, positions and targets. The gates are sampled
            // and differentiated on the device, and AdamW runs there: nothing crosses per layer, nor per parameter.
            int sequences = STEPS * BATCH * ACCUM;
            assertCopies(dev, sequences * 2L + STEPS + CHECKPOINTS * 3L * 2, sequences * 3L + tensorsOf(w) + 2);
            assertEquals(0, dev.liveTensors(), "device tensors left open");

            Path split = dir.resolve("split");
            TrainingRuns.routers(CONFIG, w, dev, RouterTrainerTest.data(dir), routerOptions(), split, STEPS / 2, false);
            assertSameRun(device, TrainingRuns.routers(CONFIG, w, dev, RouterTrainerTest.data(dir), routerOptions(), split,
                    STEPS, true));
        }
    }

    @Test
    void loraTrainingOnTheDeviceIsTheCpuRun(@TempDir Path dir) throws Exception {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 1); Backend cpu = new CpuBackend();
                EmulatedDevice dev = new EmulatedDevice();
                Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 4)) {
            TrainingRuns.Run host = TrainingRuns.lora(CONFIG, w, cpu, RouterTrainerTest.data(dir), routers, loraOptions(),
                    dir.resolve("cpu"), STEPS, false);
            TrainingRuns.Run device = TrainingRuns.lora(CONFIG, w, dev, RouterTrainerTest.data(dir), routers,
                    loraOptions(), dir.resolve("device"), STEPS, false);
            assertSameRun(host, device);
            // Down: per sequence its losses and its gates; per step the gradient norm; per checkpoint every adapter
            // matrix and its moments. Up: per sequence its ids, positions and targets (the dropout masks are drawn on
            // the device).
            int layers = CONFIG.nLayers(), targets = LoraTrainerTest.LORA.targets().size();
            int sequences = STEPS * BATCH * ACCUM;
            assertCopies(dev, sequences * 2L + STEPS + CHECKPOINTS * 3L * (2L * layers * targets),
                    sequences * 3L + tensorsOf(w) + 3);
            assertEquals(0, dev.liveTensors(), "device tensors left open");

            Path split = dir.resolve("split");
            TrainingRuns.lora(CONFIG, w, dev, RouterTrainerTest.data(dir), routers, loraOptions(), split, STEPS / 2, false);
            assertSameRun(device, TrainingRuns.lora(CONFIG, w, dev, RouterTrainerTest.data(dir), routers, loraOptions(),
                    split, STEPS, true));
        }
    }

    /**
     * Held-out evaluations during training route with the routers where they train. Each costs, per held-out
     * example, the gates of every layer and the losses down, and its ids, positions and targets up, with the indices
     * of the rows a layer gathers when it skips some: nothing for the routers, whose round trip through the host
     * would show.
     */
    @Test
    void heldOutEvaluationsUseTheRoutersWhereTheyTrain(@TempDir Path dir) throws Exception {
        int evals = 3;
        long layers = CONFIG.nLayers(), examples = evals * RouterTrainerTest.data(dir).heldOutSize();
        try (LlamaWeights w = RandomWeights.create(CONFIG, 1);
                Routers keepAll = new Routers(CONFIG.nLayers(), CONFIG.dim())) {
            long[] stage1 = evaluationCopies(dir, evals, (dev, optimization, out) -> new RouterTrainer(CONFIG, w, dev,
                    RouterTrainerTest.data(dir), new RouterTrainer.Options(0.5, 8, false, optimization), out,
                    TrainingRuns.quiet()).runUntil(false, evals));
            assertEquals(examples * (layers + 1), stage1[0], "downloads");
            assertTrue(stage1[1] <= examples * (3 + 3 * layers), stage1[1] + " uploads");
            // Frozen routers that keep every row: nothing is gathered, so the uploads are exact too.
            for (int l = 0; l < layers; l++) {
                keepAll.bias().set(4L * l + Routers.ATTN_EXECUTE, 1);
                keepAll.bias().set(4L * l + Routers.MLP_EXECUTE, 1);
            }
            long[] stage2 = evaluationCopies(dir, evals, (dev, optimization, out) -> new LoraTrainer(CONFIG, w, dev,
                    RouterTrainerTest.data(dir), keepAll, new LoraTrainer.Options(LoraTrainerTest.LORA,
                    LoraTrainer.Gates.SAMPLE, optimization), out, "test", TrainingRuns.quiet()).runUntil(false, evals));
            assertEquals(examples * (layers + 1), stage2[0], "downloads");
            assertEquals(examples * 3, stage2[1], "uploads");
        }
    }

    /** A run of some steps on a device backend, with these settings, into out. */
    private interface Run {
        void run(Backend device, Optimization optimization, Path out) throws Exception;
    }

    // What evaluating after each of `steps` steps adds to a run's copies on the emulated device: {downloads, uploads}.
    private static long[] evaluationCopies(Path dir, int steps, Run run) throws Exception {
        long[] copies = new long[2];
        for (int evalEvery : new int[] {0, 1}) {
            try (EmulatedDevice dev = new EmulatedDevice()) {
                run.run(dev, new Optimization(steps + 1, BATCH, ACCUM, 1e-2, "cosine", 1, 0.0, 1.0, 7, evalEvery, 0),
                        Files.createTempDirectory(dir, "run"));
                int sign = evalEvery == 0 ? -1 : 1;
                copies[0] += sign * dev.downloads();
                copies[1] += sign * dev.uploads();
                assertEquals(0, dev.liveTensors(), "device tensors left open");
            }
        }
        return copies;
    }

    private static void assertSameRun(TrainingRuns.Run expected, TrainingRuns.Run actual) {
        assertEquals(STEPS, actual.losses().length);
        assertArrayEquals(expected.losses(), actual.losses());
        assertEquals(expected.tensors().keySet(), actual.tensors().keySet());
        expected.tensors().forEach((name, t) -> assertArrayEquals(t, actual.tensors().get(name), name));
    }

    // At most the copies the design makes; the uploads' bounds count the setup too (the weights, the routers and the
    // adapter once).
    private static void assertCopies(EmulatedDevice dev, long downloads, long uploads) {
        System.out.printf("emulated device: %d downloads (bound %d), %d uploads (bound %d)%n", dev.downloads(), downloads,
                dev.uploads(), uploads);
        assertTrue(dev.downloads() <= downloads, dev.downloads() + " downloads, expected at most " + downloads);
        assertTrue(dev.uploads() <= uploads, dev.uploads() + " uploads, expected at most " + uploads);
    }

    private static long tensorsOf(LlamaWeights w) {
        return 9L * w.layers().size() + (w.tied() ? 2 : 3);
    }
}
