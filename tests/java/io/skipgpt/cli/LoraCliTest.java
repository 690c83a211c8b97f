package io.skipgpt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.eval.Perplexity;
import io.skipgpt.lora.PeftDirectory;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.CpuBackend;
import io.skipgpt.testing.SharedData;
import io.skipgpt.testing.TestAdapters;
import org.bytedeco.openblas.global.openblas;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Stage 2 on the command line: train-lora, merge, --lora on eval and generate, prune and demo (tiny step counts). */
class LoraCliTest {
    private static int blasThreads;

    /** stories260K's products are too small to split over threads: one BLAS thread, as demo runs it. */
    @BeforeAll
    static void oneBlasThread() {
        try (Backend ignored = new CpuBackend()) { // loading the class sets the default count first
            blasThreads = openblas.blas_get_num_threads();
        }
        CpuBackend.setBlasThreads(1);
    }

    @AfterAll
    static void restoreBlasThreads() {
        CpuBackend.setBlasThreads(blasThreads);
    }

    @ParameterizedTest
    @ValueSource(strings = {"train-lora", "merge", "prune", "demo"})
    void everyCommandHelpShowsAnExample(String command) {
        CliTest.Run r = CliTest.run(command, "--help");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("Example"), r.out());
        assertTrue(r.out().contains("skipgpt " + command), r.out());
    }

    /** The first documents of the held-out text: enough to train and score a few steps on, quickly. */
    static Path smallText(Path dir) throws Exception {
        String text = Files.readString(SharedData.require("text/tinystories_valid_head.txt"));
        List<String> docs = Perplexity.documents(text);
        Path f = dir.resolve("small.txt");
        Files.writeString(f, String.join("\n" + Perplexity.DOCUMENT_SEPARATOR + "\n", docs.subList(0, 4)));
        return f;
    }

    @Test
    void trainLoraThenEvalMergeAndGenerate(@TempDir Path dir) throws Exception {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Path text = smallText(dir);
        Path routers = dir.resolve("r"), adapter = dir.resolve("lora"), merged = dir.resolve("merged");
        CliTest.Run t = CliTest.run("train-routers", "--model", model.toString(), "--data", text.toString(), "--sparsity", "0.3",
                "--steps", "2", "--batch", "2", "--seq-len", "32", "--eval-every", "0", "--out", routers.toString(), "--device", "cpu");
        assertEquals(0, t.code(), t.err());
        Path routerFile = routers.resolve("routers.safetensors");
        CliTest.Run l = CliTest.run("train-lora", "--model", model.toString(), "--routers", routerFile.toString(), "--data",
                text.toString(), "--steps", "3", "--batch", "2", "--seq-len", "32", "--lr", "1e-2", "--targets", "q,k,o,down",
                "--rank", "4", "--eval-every", "0", "--out", adapter.toString(), "--device", "cpu");
        assertEquals(0, l.code(), l.err());
        assertEquals(3, l.err().lines().filter(s -> s.startsWith("step ")).count(), l.err());
        assertTrue(l.err().contains("tau 1.00") && l.err().contains("wrote the adapter (PEFT)"), l.err());
        assertTrue(Files.exists(adapter.resolve(PeftDirectory.CONFIG)) && Files.exists(adapter.resolve("train.jsonl")));
        JsonObject config = JsonParser.parseString(Files.readString(adapter.resolve(PeftDirectory.CONFIG))).getAsJsonObject();
        assertEquals("[\"q_proj\",\"k_proj\",\"o_proj\",\"down_proj\"]", config.get("target_modules").toString());

        CliTest.Run e = CliTest.run("eval", "--model", model.toString(), "--ppl", text.toString(), "--json", "--device", "cpu",
                "--routers", routerFile.toString(), "--lora", adapter.toString());
        assertEquals(0, e.code(), e.err());
        JsonObject unmerged = JsonParser.parseString(e.out()).getAsJsonObject();
        assertEquals(adapter.toString(), unmerged.get("lora").getAsString());

        CliTest.Run m = CliTest.run("merge", "--model", model.toString(), "--lora", adapter.toString(), "--routers",
                routerFile.toString(), "--out", merged.toString());
        assertEquals(0, m.code(), m.err());
        assertTrue(Files.exists(merged.resolve("config.json")) && Files.exists(merged.resolve("routers.safetensors")));
        CliTest.Run em = CliTest.run("eval", "--model", merged.toString(), "--ppl", text.toString(), "--json", "--device",
                "cpu", "--routers", merged.resolve("routers.safetensors").toString());
        assertEquals(0, em.code(), em.err());
        JsonObject folded = JsonParser.parseString(em.out()).getAsJsonObject();
        assertEquals(unmerged.get("ppl").getAsDouble(), folded.get("ppl").getAsDouble(), 1e-4 * unmerged.get("ppl").getAsDouble());
        assertEquals(unmerged.get("module_sparsity").getAsDouble(), folded.get("module_sparsity").getAsDouble(), 2e-3);

        CliTest.Run g = CliTest.run("generate", "--model", model.toString(), "--max-tokens", "8", "--device", "cpu",
                "--routers", routerFile.toString(), "--lora", adapter.toString());
        assertEquals(0, g.code(), g.err());
        assertTrue(g.out().length() > 8, g.out());

        CliTest.Run bad = CliTest.run("eval", "--model", model.toString(), "--ppl", text.toString(), "--device", "cpu",
                "--lora", routers.toString());
        assertNotEquals(0, bad.code());
        assertTrue(bad.err().contains("missing adapter_config.json"), bad.err());
        CliTest.Run noLora = CliTest.run("merge", "--model", model.toString(), "--out", dir.resolve("x").toString());
        assertNotEquals(0, noLora.code());
        assertTrue(noLora.err().contains("merge needs --lora DIR"), noLora.err());
    }

    @Test
    void pruneWritesRoutersAdapterMergedModelAndReport(@TempDir Path dir) throws Exception {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Path text = smallText(dir), out = dir.resolve("p");
        CliTest.Run r = CliTest.run("prune", "--model", model.toString(), "--data", text.toString(), "--eval", text.toString(),
                "--ctx", "128", "--sparsity", "0.3", "--router-steps", "2", "--lora-steps", "2", "--batch", "2", "--seq-len",
                "16", "--out", out.toString(), "--device", "cpu");
        assertEquals(0, r.code(), r.err());
        for (String stage : List.of("prune [1/4]", "prune [2/4]", "prune [3/4]", "prune [4/4]", "calibrated")) {
            assertTrue(r.err().contains(stage), stage + " in " + r.err());
        }
        String report = Files.readString(out.resolve("report.md"));
        assertEquals(report, r.out());
        for (String row : List.of("| dense |", "| routers (stage 1) |", "| routers + LoRA (stage 2) |")) {
            assertTrue(report.contains(row), row + " in " + report);
        }
        assertTrue(Files.exists(out.resolve("routers/routers.safetensors")));
        assertTrue(Files.exists(out.resolve("adapter").resolve(PeftDirectory.WEIGHTS)));
        assertTrue(Files.exists(out.resolve("merged/model.safetensors")) && Files.exists(out.resolve("merged/routers.safetensors")));
        // Without --eval the report scores the held-out examples; a finished run resumes to the same routers
        CliTest.Run again = CliTest.run("prune", "--model", model.toString(), "--data", text.toString(), "--sparsity", "0.3",
                "--router-steps", "2", "--lora-steps", "2", "--batch", "2", "--seq-len", "16", "--out", out.toString(),
                "--device", "cpu", "--resume");
        assertEquals(0, again.code(), again.err());
        assertTrue(again.err().contains("resuming from") && again.out().contains("the held-out share"), again.err());
    }

    @Test
    void demoWithoutTheDataNamesWhatIsMissing(@TempDir Path dir) {
        CliTest.Run r = CliTest.run("demo", "--data-dir", dir.toString(), "--out", dir.resolve("out").toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("stories260K.gguf") && r.err().contains("--data-dir"), r.err());
    }

    /** eval --compare applies --lora too: the same variant scores another perplexity with the adapter. */
    @Test
    void compareAppliesTheAdapter(@TempDir Path dir) throws Exception {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Path text = SharedData.require("text/tinystories_valid_head.txt");
        Path adapter = dir.resolve("adapter");
        TestAdapters.writeRandom(adapter, model, 4);
        double[] ppl = new double[2];
        for (int withLora = 0; withLora < 2; withLora++) {
            List<String> args = new java.util.ArrayList<>(List.of("eval", "--model", model.toString(), "--ppl",
                    text.toString(), "--ctx", "512", "--compare", "dense", "--json", "--device", "cpu"));
            if (withLora == 1) args.addAll(List.of("--lora", adapter.toString()));
            CliTest.Run r = CliTest.run(args.toArray(String[]::new));
            assertEquals(0, r.code(), r.err());
            ppl[withLora] = JsonParser.parseString(r.out()).getAsJsonObject().getAsJsonArray("variants").get(0)
                    .getAsJsonObject().getAsJsonObject("perplexity").get("ppl").getAsDouble();
        }
        assertEquals(3.4071, ppl[0], 2e-4);
        assertNotEquals(ppl[0], ppl[1], "the adapter changes the model");
    }
}
