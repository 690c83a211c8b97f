package io.skipgpt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.eval.ZeroShotTasks;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.Routers;
import io.skipgpt.testing.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** eval --tasks on the real model and the real task files: every task runs, every figure is a proportion. */
class EvalTasksCliTest {
    @Test
    void everyTaskGivesProportions() {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Path bench = SharedData.require("bench/llm-foundry");
        CliTest.Run r = CliTest.run("eval", "--model", model.toString(), "--tasks", "all", "--limit", "20", "--ctx", "128",
                "--bench-data", bench.toString(), "--device", "cpu", "--json");
        assertEquals(0, r.code(), r.err());
        JsonObject dense = JsonParser.parseString(r.out()).getAsJsonObject().getAsJsonArray("variants").get(0).getAsJsonObject();
        assertEquals("dense", dense.get("variant").getAsString());
        JsonObject tasks = dense.getAsJsonObject("tasks");
        assertEquals(ZeroShotTasks.Task.values().length, tasks.size());
        for (Map.Entry<String, com.google.gson.JsonElement> e : tasks.entrySet()) {
            JsonObject t = e.getValue().getAsJsonObject();
            assertEquals(20, t.get("items").getAsInt(), e.getKey());
            for (String metric : new String[] {"acc", "acc_norm"}) {
                if (!t.has(metric)) continue;
                double v = t.get(metric).getAsDouble();
                assertTrue(v >= 0 && v <= 1, e.getKey() + " " + metric + " = " + v);
            }
        }
        assertTrue(tasks.getAsJsonObject("lambada").get("ppl").getAsDouble() > 1);
        assertTrue(tasks.getAsJsonObject("arc_easy").has("acc_norm") && !tasks.getAsJsonObject("winogrande").has("acc_norm"));
        assertEquals(0.0, dense.getAsJsonObject("routing").get("module_sparsity").getAsDouble());
        assertTrue(r.err().contains("ETA"), "progress with an ETA on stderr: " + r.err());
    }

    @Test
    void variantsSideBySideInOneTable(@TempDir Path dir) throws Exception {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        Path bench = SharedData.require("bench/llm-foundry");
        Path story = SharedData.require("text/tinystories_valid_head.txt");
        Path text = dir.resolve("stories.txt");
        Files.writeString(text, Files.readString(story).substring(0, 3000));
        Path routers = dir.resolve("routers.safetensors");
        try (Routers rt = Routers.initialise(5, 64, 7)) {
            RouterFile.write(routers, rt);
        }
        Path out = dir.resolve("out");
        CliTest.Run r = CliTest.run("eval", "--model", model.toString(), "--tasks", "copa,winogrande", "--limit", "5",
                "--bench-data", bench.toString(), "--ppl", text.toString(), "--device", "cpu", "--compare", "dense",
                "--compare", "skip:attn:2,mlp:4", "--compare", "routers:" + routers, "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        String table = r.out();
        assertTrue(table.startsWith("| task | metric | dense | skip:attn:2,mlp:4 | routers:" + routers + " |"), table);
        assertTrue(table.contains("| copa (n=5) | acc |") && table.contains("| winogrande (n=5) | acc |"), table);
        assertTrue(table.contains("| routing | module sparsity | 0.000 | 0.200 |"), table);
        assertEquals(table.strip(), Files.readString(out.resolve("eval.md")).strip());
        JsonObject json = JsonParser.parseString(Files.readString(out.resolve("eval.json"))).getAsJsonObject();
        JsonObject dense = json.getAsJsonArray("variants").get(0).getAsJsonObject();
        JsonObject skip = json.getAsJsonArray("variants").get(1).getAsJsonObject();
        double densePpl = dense.getAsJsonObject("perplexity").get("ppl").getAsDouble();
        assertTrue(densePpl > 1 && densePpl < 10, "stories260K on its own kind of text: " + densePpl);
        assertTrue(skip.getAsJsonObject("perplexity").get("ppl").getAsDouble() > densePpl);
        double routed = json.getAsJsonArray("variants").get(2).getAsJsonObject().getAsJsonObject("routing")
                .get("module_sparsity").getAsDouble();
        assertTrue(routed > 0 && routed < 1, "untrained routers skip some modules: " + routed);
    }

    @Test
    void badRequestsAreOneClearLine() {
        Path model = SharedData.require("models/stories260K/stories260K.gguf");
        CliTest.Run r = CliTest.run("eval", "--model", model.toString(), "--device", "cpu");
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("--ppl") && r.err().contains("--tasks"), r.err());
        r = CliTest.run("eval", "--model", model.toString(), "--tasks", "hellaswag", "--device", "cpu");
        assertTrue(r.err().contains("unknown task 'hellaswag'"), r.err());
        r = CliTest.run("eval", "--model", model.toString(), "--tasks", "copa", "--compare", "sparse", "--device", "cpu",
                "--bench-data", SharedData.require("bench/llm-foundry").toString());
        assertTrue(r.err().contains("--compare 'sparse'"), r.err());
        r = CliTest.run("eval", "--model", model.toString(), "--tasks", "copa", "--compare", "dense", "--skip", "attn:1",
                "--device", "cpu", "--bench-data", SharedData.require("bench/llm-foundry").toString());
        assertTrue(r.err().contains("--compare names every variant"), r.err());
    }
}
