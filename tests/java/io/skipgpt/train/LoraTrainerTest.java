package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.lora.LoraConfig;
import io.skipgpt.lora.PeftDirectory;
import io.skipgpt.model.Adapter;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.Projection;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Stage 2 end to end on a small random model: it trains the adapter, writes it as PEFT, and resumes exactly. */
class LoraTrainerTest {
    static final LlamaConfig CONFIG = RouterTrainerTest.CONFIG;
    static final LoraConfig LORA = new LoraConfig(List.of(Projection.Q, Projection.V, Projection.GATE), 4, 8, 0.1);

    static LoraTrainer.Options options(int steps, LoraTrainer.Gates gates) {
        return new LoraTrainer.Options(LORA, gates, new Optimization(steps, 3, 2, 1e-2, "cosine", 1, 0.0, 1.0, 7, 2, 2));
    }

    @Test
    void resumedRunEqualsUninterruptedRun(@TempDir Path dir) throws Exception {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 1); Backend b = new CpuBackend();
                Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 4)) {
            Path straight = dir.resolve("straight"), split = dir.resolve("split");
            trainer(w, b, routers, dir, options(6, LoraTrainer.Gates.SAMPLE), straight).run(false);
            // Interrupted after step 4 (the last checkpoint), as a killed run would be: steps 5 and 6 are lost.
            trainer(w, b, routers, dir, options(6, LoraTrainer.Gates.SAMPLE), split).runUntil(false, 4);
            assertTrue(!Files.exists(split.resolve(PeftDirectory.WEIGHTS)), "an interrupted run writes no adapter");
            trainer(w, b, routers, dir, options(6, LoraTrainer.Gates.SAMPLE), split).run(true);
            try (LoraAdapter a = PeftDirectory.read(straight, CONFIG); LoraAdapter c = PeftDirectory.read(split, CONFIG)) {
                Map<String, Tensor> other = c.tensors();
                a.tensors().forEach((name, t) -> assertArrayEquals(t.toFloatArray(), other.get(name).toFloatArray(), name));
                double bNorm = 0;
                for (int l = 0; l < CONFIG.nLayers(); l++) for (float v : a.b(l, Projection.V).toFloatArray()) bNorm += v * v;
                assertTrue(bNorm > 0, "B should have moved from zero");
            }
            assertEquals(TrainingRuns.withoutTimings(Files.readAllLines(straight.resolve("train.jsonl"))),
                    TrainingRuns.withoutTimings(Files.readAllLines(split.resolve("train.jsonl"))));
        }
    }

    @Test
    void trainingLowersTheHeldOutLossOfTheDenseModel(@TempDir Path dir) throws IOException {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 2); Backend b = new CpuBackend()) {
            TokenDataset data = RouterTrainerTest.data(dir);
            double before = HeldOut.evaluate(CONFIG, w, b, data, null, Adapter.NONE).nll();
            LoraTrainer.Options o = new LoraTrainer.Options(LORA, LoraTrainer.Gates.DETERMINISTIC, new Optimization(12, 4, 1, 3e-2, "cosine", 2, 0.0, 1.0, 3, 0, 0));
            HeldOut after = new LoraTrainer(CONFIG, w, b, data, null, o, dir.resolve("run"), "random", TrainingRuns.quiet()).run(false);
            assertTrue(after.nll() < before - 0.05, "held-out nll should drop: " + before + " -> " + after.nll());
            assertEquals(0.0, after.moduleSparsity());
            assertTrue(Files.exists(dir.resolve("run").resolve(PeftDirectory.CONFIG)));
        }
    }

    @Test
    void resumeRefusesOtherSettingsOrRouters(@TempDir Path dir) throws IOException {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 1); Backend b = new CpuBackend();
                Routers routers = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 4);
                Routers others = Routers.initialise(CONFIG.nLayers(), CONFIG.dim(), 5)) {
            Path out = dir.resolve("run");
            trainer(w, b, routers, dir, options(6, LoraTrainer.Gates.SAMPLE), out).runUntil(false, 2);
            IOException e = assertThrows(IOException.class,
                    () -> trainer(w, b, routers, dir, options(6, LoraTrainer.Gates.DETERMINISTIC), out).run(true));
            assertTrue(e.getMessage().contains("gates"), e.getMessage());
            e = assertThrows(IOException.class,
                    () -> trainer(w, b, others, dir, options(6, LoraTrainer.Gates.SAMPLE), out).run(true));
            assertTrue(e.getMessage().contains("other routers"), e.getMessage());
        }
    }

    private static LoraTrainer trainer(LlamaWeights w, Backend b, Routers routers, Path dir, LoraTrainer.Options o,
                                       Path out) throws IOException {
        return new LoraTrainer(CONFIG, w, b, RouterTrainerTest.data(dir), routers, o, out, "random", TrainingRuns.quiet());
    }

}
