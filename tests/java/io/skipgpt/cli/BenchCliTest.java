package io.skipgpt.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bench with forced random routing: dense and routed side by side, bounds, and the results file. */
class BenchCliTest {
    @Test
    void routedFiguresComeWithTheirBoundsAndAreRecorded(@TempDir Path dir) throws Exception {
        Path results = dir.resolve("bench").resolve("results.jsonl");
        String[] args = {"bench", "--shape", "tiny", "--layers", "2", "--pp", "32", "--tg", "4", "--reps", "1",
                "--warmup", "0", "--sparsity", "0.25,0.5", "--device", "cpu", "--json", "--record", results.toString()};
        CliTest.Run r = CliTest.run(args);
        assertEquals(0, r.code(), r.err());
        JsonObject out = JsonParser.parseString(r.out()).getAsJsonObject();
        JsonArray rows = out.getAsJsonArray("results");
        assertEquals(6, rows.size());
        List<String> expected = List.of("pp32 dense", "pp32 random 0.25", "pp32 random 0.50", "tg4 dense",
                "tg4 random 0.25", "tg4 random 0.50");
        for (int i = 0; i < 6; i++) {
            JsonObject o = rows.get(i).getAsJsonObject();
            assertEquals(expected.get(i), o.get("test").getAsString() + " " + o.get("variant").getAsString());
            double bound = o.get("flop_bound").getAsDouble();
            assertCpuFigures(o, i < 3 ? 32 : 4, out.get("threads").getAsInt());
            assertTrue(o.has("speedup_by_cpu_time"), o.toString());
            if (i % 3 == 0) {
                assertEquals(1.0, o.get("speedup").getAsDouble());
                assertEquals(1.0, bound);
            } else {
                assertTrue(bound > 1, o.toString());
                assertEquals(o.get("speedup").getAsDouble() / bound, o.get("speedup_over_bound").getAsDouble(), 1e-9);
                assertTrue(o.get("flop_bound_with_head").getAsDouble() <= bound);
            }
        }
        assertEquals(0.5, rows.get(2).getAsJsonObject().get("module_sparsity").getAsDouble(), 0.1);
        // a second run appends a second line
        assertEquals(0, CliTest.run(args).code());
        List<String> lines = Files.readAllLines(results);
        assertEquals(2, lines.size());
        JsonObject line = JsonParser.parseString(lines.get(0)).getAsJsonObject();
        assertTrue(line.has("date") && line.getAsJsonObject("machine").has("cpu"), lines.get(0));
        assertTrue(line.getAsJsonObject("machine").has("loadavg_1min_after"), lines.get(0));
        assertTrue(line.getAsJsonObject("machine").get("cores_available").getAsInt() > 0);
        assertEquals("skipgpt", line.getAsJsonArray("command").get(0).getAsString());
        assertEquals("bench", line.getAsJsonArray("command").get(1).getAsString());
        assertEquals(6, line.getAsJsonArray("results").size());
    }

    /**
     * cpu_share is CPU seconds / (wall seconds x cores): NaN exactly when the repetition took under 0.1 s (too short
     * for the 10 ms CPU clock) or there is no CPU clock; otherwise at most 1 but for the clock's rounding, and tied to
     * the two rates (one repetition: the medians are its figures): tokens/s / tokens per CPU-s = share x cores.
     */
    private static void assertCpuFigures(JsonObject o, int tokens, int cores) {
        double share = o.get("cpu_share").getAsDouble(), rate = o.get("tokens_per_s").getAsDouble();
        double perCpuSecond = o.get("tokens_per_cpu_s").getAsDouble();
        double wall = tokens / rate;
        boolean clock = Files.isReadable(Path.of("/proc/self/stat"));
        assertEquals(!clock || wall < 0.1, Double.isNaN(share), "a " + wall + " s repetition: " + o);
        assertEquals(Double.isNaN(share), Double.isNaN(perCpuSecond), o.toString());
        if (Double.isNaN(share)) return;
        // user and system time are each read in whole ticks: the difference of two readings overstates by < 2 ticks
        double cpu = share * wall * cores;
        assertTrue(cpu >= 0 && cpu < wall * cores + 0.02, cpu + " CPU s in " + wall + " s on " + cores + " cores: " + o);
        assertEquals(rate / perCpuSecond, share * cores, 1e-9 * share * cores, o.toString());
    }

    @Test
    void trainedRoutersRunBesideDense(@TempDir Path dir) throws Exception {
        Path routers = dir.resolve("routers.safetensors");
        // the tiny shape has dim 256; one layer
        try (io.skipgpt.routing.Routers r = io.skipgpt.routing.Routers.initialise(1, 256, 5)) {
            io.skipgpt.routing.RouterFile.write(routers, r);
        }
        CliTest.Run r = CliTest.run("bench", "--shape", "tiny", "--layers", "1", "--pp", "32", "--tg", "2", "--reps", "1",
                "--warmup", "0", "--routers", routers.toString(), "--device", "cpu", "--json");
        assertEquals(0, r.code(), r.err());
        JsonArray rows = JsonParser.parseString(r.out()).getAsJsonObject().getAsJsonArray("results");
        assertEquals(4, rows.size());
        JsonObject routed = rows.get(1).getAsJsonObject();
        assertEquals("routers routers.safetensors", routed.get("variant").getAsString());
        double sparsity = routed.get("module_sparsity").getAsDouble();
        assertTrue(sparsity > 0 && sparsity < 1, "untrained routers skip some modules: " + sparsity);
        CliTest.Run wrong = CliTest.run("bench", "--shape", "tiny", "--layers", "2", "--routers", routers.toString(),
                "--device", "cpu");
        assertNotEquals(0, wrong.code());
        assertTrue(wrong.err().contains(routers.toString()), wrong.err());
    }

    @Test
    void theTableShowsSpeedUpAndBound() {
        CliTest.Run r = CliTest.run("bench", "--shape", "tiny", "--layers", "1", "--pp", "16", "--tg", "2", "--reps", "1",
                "--warmup", "0", "--sparsity", "0.4", "--device", "cpu", "--profile");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("| test | variant | sparsity | tok/s | CPU share | speed-up | FLOP bound | speed-up / bound"), r.out());
        assertTrue(r.out().contains("| pp16 | random 0.40 |") && r.out().contains("| tg2 | dense |"), r.out());
        // the profile: one table per phase, a column per variant, matmuls by weight shape
        assertTrue(r.out().contains("| pp16: ms per run, by op | dense | random 0.40 |"), r.out());
        assertTrue(r.out().contains("| tg2: ms per run, by op |"), r.out());
        assertTrue(r.out().contains("| matmul 688x256 |") && r.out().contains("| attention |"), r.out());
        assertTrue(r.out().contains("| gatherRows |"), "only the routed passes gather: " + r.out());
        CliTest.Run bad = CliTest.run("bench", "--shape", "tiny", "--sparsity", "1.5", "--device", "cpu");
        assertNotEquals(0, bad.code());
        assertTrue(bad.err().contains("--sparsity"), bad.err());
    }

    /** Batched decode: B sequences after a C-token prompt each, every step one pass; rates count all B rows. */
    @Test
    void batchedDecodeCarriesEverySequence() {
        CliTest.Run r = CliTest.run("bench", "--shape", "tiny", "--layers", "1", "--pp", "8", "--tg", "3", "--batch", "4",
                "--context", "6", "--reps", "1", "--warmup", "0", "--sparsity", "0.4", "--device", "cpu", "--json");
        assertEquals(0, r.code(), r.err());
        JsonArray rows = JsonParser.parseString(r.out()).getAsJsonObject().getAsJsonArray("results");
        assertEquals(4, rows.size());
        JsonObject dense = rows.get(2).getAsJsonObject(), routed = rows.get(3).getAsJsonObject();
        assertEquals("tg3 x4 @6", dense.get("test").getAsString());
        assertEquals(4, dense.get("batch").getAsInt());
        assertEquals(6, routed.get("context").getAsInt());
        assertEquals(1.0, dense.get("flop_bound").getAsDouble(), 1e-12);
        assertTrue(routed.get("flop_bound").getAsDouble() > 1.2, "40% of modules skipped: " + routed);
        // several batch sizes: one decode phase each, on the same model, each routed row against its own dense
        CliTest.Run both = CliTest.run("bench", "--shape", "tiny", "--layers", "1", "--pp", "8", "--tg", "3", "--batch",
                "4,1", "--context", "6", "--reps", "1", "--warmup", "0", "--sparsity", "0.4", "--device", "cpu", "--json");
        assertEquals(0, both.code(), both.err());
        JsonArray all = JsonParser.parseString(both.out()).getAsJsonObject().getAsJsonArray("results");
        assertEquals(6, all.size());
        assertEquals("tg3 x4 @6", all.get(2).getAsJsonObject().get("test").getAsString());
        JsonObject single = all.get(4).getAsJsonObject(), singleRouted = all.get(5).getAsJsonObject();
        assertEquals("tg3 x1 @6", single.get("test").getAsString());
        assertEquals(1, single.get("batch").getAsInt());
        assertEquals(singleRouted.get("tokens_per_s").getAsDouble() / single.get("tokens_per_s").getAsDouble(),
                singleRouted.get("speedup").getAsDouble(), 1e-9);
        CliTest.Run badBatch = CliTest.run("bench", "--shape", "tiny", "--batch", "4,0", "--device", "cpu");
        assertNotEquals(0, badBatch.code());
        assertTrue(badBatch.err().contains("--batch sizes must be >= 1"), badBatch.err());
        CliTest.Run tooLong = CliTest.run("bench", "--shape", "tiny", "--tg", "8", "--context", "100000", "--device", "cpu");
        assertNotEquals(0, tooLong.code());
        assertTrue(tooLong.err().contains("--context"), tooLong.err());
    }
}
