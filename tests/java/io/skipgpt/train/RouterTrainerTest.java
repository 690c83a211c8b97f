package io.skipgpt.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.model.RandomWeights;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.testing.CharTokenizer;
import io.skipgpt.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Stage 1 end to end on a small random model: it trains, it writes router files, and it resumes exactly. */
class RouterTrainerTest {
    static final LlamaConfig CONFIG = new LlamaConfig(24, 40, 3, 4, 2, 128, 64, 10000f, 1e-5f, true);

    static final Tokenizer CHARS = new CharTokenizer(128);

    static TokenDataset data(Path dir) throws IOException {
        Path f = dir.resolve("train.txt");
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 40; i++) b.append("the cat sat on the mat number ").append(i).append("\n<|endoftext|>\n");
        Files.writeString(f, b.toString());
        return TokenDataset.load(List.of(f), CHARS, new TokenDataset.Options(TokenDataset.Mode.DOCUMENTS, 16, 0.1, 3));
    }

    static RouterTrainer.Options options(int steps) {
        return new RouterTrainer.Options(0.5, 8, false, new Optimization(steps, 3, 2, 5e-2, "cosine", 1, 0.01, 1.0, 7, 2, 2));
    }

    @Test
    void resumedRunEqualsUninterruptedRun(@TempDir Path dir) throws Exception {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 1); Backend b = new CpuBackend()) {
            Path straight = dir.resolve("straight"), split = dir.resolve("split");
            new RouterTrainer(CONFIG, w, b, data(dir), options(6), straight, TrainingRuns.quiet()).run(false);
            // Interrupted after step 4 (the last checkpoint), as a killed run would be: steps 5 and 6 are lost.
            new RouterTrainer(CONFIG, w, b, data(dir), options(6), split, TrainingRuns.quiet()).runUntil(false, 4);
            new RouterTrainer(CONFIG, w, b, data(dir), options(6), split, TrainingRuns.quiet()).run(true);
            try (Routers a = RouterFile.read(RouterTrainer.routersFile(straight), 3, 24);
                    Routers c = RouterFile.read(RouterTrainer.routersFile(split), 3, 24)) {
                assertArrayEquals(a.weight().toFloatArray(), c.weight().toFloatArray());
                assertArrayEquals(a.bias().toFloatArray(), c.bias().toFloatArray());
            }
            List<String> logA = Files.readAllLines(straight.resolve("train.jsonl"));
            List<String> logB = Files.readAllLines(split.resolve("train.jsonl"));
            assertEquals(TrainingRuns.withoutTimings(logA), TrainingRuns.withoutTimings(logB));
        }
    }

    @Test
    void trainingMovesSparsityTowardTheTarget(@TempDir Path dir) throws IOException {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 2); Backend b = new CpuBackend()) {
            RouterTrainer.Options o = new RouterTrainer.Options(0.9, 20, false, new Optimization(30, 4, 1, 5e-2, "constant", 0, 0.0, 1.0, 3, 0, 0));
            RouterTrainer t = new RouterTrainer(CONFIG, w, b, data(dir), o, dir.resolve("run"), TrainingRuns.quiet());
            double before;
            try (Routers init = Routers.initialise(3, 24, 3)) {
                before = t.evaluate(init).moduleSparsity();
            }
            HeldOut after = t.run(false);
            assertTrue(after.moduleSparsity() > before + 0.2,
                    "sparsity should climb toward 0.9: " + before + " -> " + after.moduleSparsity());
            assertTrue(Files.exists(dir.resolve("run/routers.safetensors")));
        }
    }

    @Test
    void calibrationHitsTheTargetOnTrainingData(@TempDir Path dir) throws IOException {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 5); Backend b = new CpuBackend();
                Routers routers = Routers.initialise(3, 24, 11)) {
            TokenDataset d = data(dir);
            RouterTrainer t = new RouterTrainer(CONFIG, w, b, d, options(1), dir.resolve("run"), TrainingRuns.quiet());
            double delta = t.calibrate(routers, 20);
            double realised = t.evaluateOn(routers, d.trainHead(20)).moduleSparsity();
            assertEquals(0.5, realised, 0.02, "delta " + delta);
        }
    }

    @Test
    void resumeRefusesOtherSettings(@TempDir Path dir) throws IOException {
        try (LlamaWeights w = RandomWeights.create(CONFIG, 1); Backend b = new CpuBackend()) {
            Path out = dir.resolve("run");
            new RouterTrainer(CONFIG, w, b, data(dir), options(6), out, TrainingRuns.quiet()).runUntil(false, 2);
            RouterTrainer.Options other = new RouterTrainer.Options(0.3, 8, false, new Optimization(6, 3, 2, 5e-2, "cosine", 1, 0.01, 1.0, 7, 2, 2));
            IOException e = assertThrows(IOException.class,
                    () -> new RouterTrainer(CONFIG, w, b, data(dir), other, out, TrainingRuns.quiet()).run(true));
            assertTrue(e.getMessage().contains("sparsity"), e.getMessage());
        }
    }

    // Timing fields differ between runs; everything else must match.
}
