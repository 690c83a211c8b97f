package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelLoader;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CudaBackend;
import io.skipgpt.tensor.GpuProbe;
import io.skipgpt.tensor.ReferenceBackend;
import io.skipgpt.testing.SharedData;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Both trainers on the CUDA backend (fp32 GEMMs) against the plain-Java reference backend, which needs no OpenBLAS
 * (a GPU machine has none): 20 steps of router tuning and of LoRA training on a tiny random model, and a few steps of
 * router tuning on stories260K when the shared data is there. Per-step losses agree to 1e-3 relative: the sums run
 * in other orders, and a gate whose logits differ in their last bits could flip, which is rare at these sizes. Both
 * sides' losses and the largest differences are printed on lines starting with "PARITY ", which the GPU results
 * file collects. Skipped where {@link GpuProbe} finds no GPU.
 */
class CudaTrainingParityTest {
    private static final double TOLERANCE = 1e-3;
    private static final LlamaConfig CONFIG = RouterTrainerTest.CONFIG;
    private static final int STEPS = 20;
    private static GpuProbe.Result gpu;
    private static Backend cuda;
    private static final Backend REFERENCE = new ReferenceBackend();

    @BeforeAll
    static void open() {
        gpu = GpuProbe.probe();
        if (gpu.available()) cuda = CudaBackend.open(CudaBackend.Precision.FP32);
    }

    @AfterAll
    static void close() {
        if (cuda != null) cuda.close();
    }

    @BeforeEach
    void needsGpu() {
        assumeTrue(gpu.available(), () -> "no GPU: " + gpu.message());
    }

    @Test
    void routerTuning(@TempDir Path dir) throws Exception {
        // One step more than the runs take, so that none reaches the final evaluation (see TrainingRuns).
        RouterTrainer.Options o = new RouterTrainer.Options(0.5, 8, false, new Optimization(STEPS + 1, 3, 2, 5e-2, "cosine", 1, 0.01, 1.0, 7, 0, 10));
        try (LlamaWeights w = RandomWeights.create(CONFIG, 1)) {
            TrainingRuns.Run ref = TrainingRuns.routers(CONFIG, w, REFERENCE, RouterTrainerTest.data(dir), o,
                    dir.resolve("reference"), STEPS, false);
            TrainingRuns.Run dev = TrainingRuns.routers(CONFIG, w, cuda, RouterTrainerTest.data(dir), o,
                    dir.resolve("cuda"), STEPS, false);
            check("routers", ref, dev, STEPS);
        }
    }

    @Test
    void loraTraining(@TempDir Path dir) throws Exception {
        LoraTrainer.Options o = new LoraTrainer.Options(LoraTrainerTest.LORA, LoraTrainer.Gates.SAMPLE, new Optimization(STEPS + 1, 3, 2, 1e-2, "cosine", 1, 0.0, 1.0, 7, 0, 10));
        try (LlamaWeights w = RandomWeights.create(CONFIG, 1);
                Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 4)) {
            TrainingRuns.Run ref = TrainingRuns.lora(CONFIG, w, REFERENCE, RouterTrainerTest.data(dir), routers, o,
                    dir.resolve("reference"), STEPS, false);
            TrainingRuns.Run dev = TrainingRuns.lora(CONFIG, w, cuda, RouterTrainerTest.data(dir), routers, o,
                    dir.resolve("cuda"), STEPS, false);
            check("lora", ref, dev, STEPS);
        }
    }

    @Test
    void routerTuningOnStories260K(@TempDir Path dir) throws Exception {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Path text = SharedData.require("text/tinystories_valid_head.txt");
        int steps = 4;
        RouterTrainer.Options o = new RouterTrainer.Options(0.25, 8, false, new Optimization(steps + 1, 2, 1, 2e-3, "constant", 0, 0.01, 1.0, 0, 0, steps));
        try (LoadedModel m = ModelLoader.load(model, null)) {
            TokenDataset.Options cut = new TokenDataset.Options(TokenDataset.Mode.PACKED, 32, 0.05, 0);
            TrainingRuns.Run ref = TrainingRuns.routers(m.config(), m.weights(), REFERENCE,
                    TokenDataset.load(List.of(text), m.tokenizer(), cut), o, dir.resolve("reference"), steps, false);
            TrainingRuns.Run dev = TrainingRuns.routers(m.config(), m.weights(), cuda,
                    TokenDataset.load(List.of(text), m.tokenizer(), cut), o, dir.resolve("cuda"), steps, false);
            check("stories260K routers", ref, dev, steps);
        }
    }

    private static void check(String what, TrainingRuns.Run ref, TrainingRuns.Run dev, int steps) {
        TrainingRuns.print(what, "reference", ref, "cuda", dev);
        assertEquals(steps, dev.losses().length);
        double diff = TrainingRuns.lossDifference(ref, dev);
        assertTrue(diff <= TOLERANCE, what + ": losses differ by " + diff + " relative, more than " + TOLERANCE);
    }
}
