package io.skipgpt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.skipgpt.eval.PngCheck;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.Routers;
import io.skipgpt.testing.SharedData;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** report on the real model: the markdown tables and the three pictures, checked as files. */
class ReportCliTest {
    @Test
    void helpShowsAnExample() {
        CliTest.Run r = CliTest.run("report", "--help");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("Example") && r.out().contains("skipgpt report"), r.out());
    }

    @Test
    void reportWritesTablesAndPictures(@TempDir Path dir) throws Exception {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Path stories = SharedData.require("text/tinystories_valid_head.txt");
        Path text = dir.resolve("held-out.txt");
        Files.writeString(text, Files.readString(stories).substring(0, 4000));
        Path routers = dir.resolve("routers.safetensors");
        try (Routers r = Routers.initialise(5, 64, 3)) {
            RouterFile.write(routers, r);
        }
        Path log = dir.resolve("train.jsonl");
        StringBuilder b = new StringBuilder();
        for (int s = 1; s <= 40; s++) {
            b.append(String.format(Locale.ROOT, "{\"step\":%d,\"loss\":%.3f,\"ce\":%.3f,\"sparsity\":%.3f,\"attn_keep\":0.7,"
                    + "\"mlp_keep\":0.8,\"tau\":%.3f}%n", s, 2 + 3.0 / s, 1.9 + 3.0 / s, 0.3 - 0.002 * s, 5 - 0.1 * s));
        }
        b.append("{\"step\":40,\"eval_nll\":1.5,\"eval_ppl\":4.48,\"eval_sparsity\":0.21}\n");
        Files.writeString(log, b);
        Path out = dir.resolve("report");
        CliTest.Run r = CliTest.run("report", "--model", model.toString(), "--routers", routers.toString(), "--text",
                text.toString(), "--train-log", log.toString(), "--skip", "attn:2,mlp:4", "--tokens", "48", "--ctx", "512",
                "--out", out.toString(), "--device", "cpu");
        assertEquals(0, r.code(), r.err());
        String md = Files.readString(out.resolve("report.md"));
        assertTrue(md.contains("| variant | ppl | vs dense | module sparsity | param sparsity | FLOP saving | FLOP bound |"), md);
        assertTrue(md.contains("| dense |") && md.contains("| static attn:2,mlp:4 |") && md.contains("| routers routers.safetensors |"), md);
        assertTrue(md.contains("| 4 |"), "a keep-rate row per layer: " + md);
        for (String png : new String[] {"keep.png", "tokens.png", "training.png"}) {
            assertTrue(md.contains("](" + png + ")"), md);
        }
        assertTrue(md.contains("last step: step 40"), md);
        PngCheck.assertPng(out.resolve("keep.png"), 500, 150);
        BufferedImage tokens = PngCheck.assertPng(out.resolve("tokens.png"), 48 * 18, 2 * 5 * 12);
        assertTrue(tokens.getWidth() < 48 * 18 + 400, "one column per token: " + tokens.getWidth());
        PngCheck.assertPng(out.resolve("training.png"), 1000, 800);
        CliTest.Run bad = CliTest.run("report", "--model", model.toString(), "--routers", routers.toString(), "--text",
                text.toString(), "--out", out.toString(), "--routing", "random", "--device", "cpu");
        assertNotEquals(0, bad.code());
        assertTrue(bad.err().contains("--routing must be"), bad.err());
    }
}
