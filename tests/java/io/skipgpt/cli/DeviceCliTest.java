package io.skipgpt.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.EmulatedDevice;
import io.skipgpt.testing.SharedData;
import io.skipgpt.testing.TestAdapters;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The commands that run a model, on a device backend: the emulated device stands in for the GPU (its tensors
 * refuse host access, its ops are the CPU kernels), so each command must print exactly what it prints on the
 * CPU, and leave nothing allocated on the device.
 */
class DeviceCliTest {
    private final List<EmulatedDevice> opened = new ArrayList<>();

    @AfterEach
    void noDevice() {
        DeviceOptions.deviceForTests = null;
    }

    @Test
    void generateEvalAndStaticSkipPrintWhatTheCpuPrints() {
        String model = SharedData.require("models/stories260K/stories260K.gguf").toString();
        String text = SharedData.require("text/tinystories_valid_head.txt").toString();
        String calib = SharedData.require("text/tinystories_valid_part2.txt").toString();
        sameOnBoth(r -> r.out(), "generate", "--model", model, "--prompt", "Once upon a time", "--max-tokens", "24");
        sameOnBoth(r -> r.out(), "generate", "--model", model, "--max-tokens", "16", "--skip", "attn:1,mlp:3");
        sameOnBoth(DeviceCliTest::figures, "eval", "--model", model, "--ppl", text, "--ctx", "256", "--json");
        sameOnBoth(DeviceCliTest::figures, "eval", "--model", model, "--ppl", text, "--ctx", "256", "--json",
                "--skip", "attn:2,mlp:4");
        sameOnBoth(r -> r.out(), "static-skip", "--model", model, "--calib", calib, "--calib-chars", "3000",
                "--sparsity", "0.2", "--method", "cosine", "--ctx", "256");
    }

    @Test
    void zeroShotTasksPrintWhatTheCpuPrints() {
        String model = SharedData.require("models/stories260K/stories260K.gguf").toString();
        String bench = SharedData.require("bench/llm-foundry").toString();
        sameOnBoth(DeviceCliTest::figures, "eval", "--model", model, "--tasks", "copa,arc_easy", "--limit", "8", "--ctx", "128",
                "--bench-data", bench, "--json");
    }

    /** An adapter with non-zero B (a fresh one adds nothing), applied unmerged on the device. */
    @Test
    void generateWithALoraAdapter(@TempDir Path dir) throws Exception {
        Path gguf = SharedData.require("models/stories260K/stories260K.gguf");
        Path adapter = dir.resolve("adapter");
        TestAdapters.writeRandom(adapter, gguf, 5);
        sameOnBoth(r -> r.out(), "generate", "--model", gguf.toString(), "--lora", adapter.toString(),
                "--max-tokens", "24");
    }

    /** The whole job on the device: the report's figures are the CPU's (its header names the device and time). */
    @Test
    void pruneReportsWhatTheCpuReports(@TempDir Path dir) {
        String model = SharedData.require("models/stories260K/stories260K.gguf").toString();
        String text = SharedData.require("text/tinystories_valid_head.txt").toString();
        int[] run = {0};
        sameOnBoth(r -> r.out().lines().filter(l -> l.startsWith("| ")).toList().toString(),
                () -> new String[] {"prune", "--model", model, "--data", text, "--eval", text, "--ctx", "128",
                        "--sparsity", "0.3", "--router-steps", "2", "--lora-steps", "2", "--batch", "2", "--seq-len", "16",
                        "--out", dir.resolve("run" + run[0]++).toString()});
    }

    /** Routing from a router file: the same figures, and the gate and its routers freed on the device. */
    @Test
    void routerFilesRouteAsOnTheCpu(@TempDir Path dir) throws Exception {
        String model = SharedData.require("models/stories260K/stories260K.gguf").toString();
        String text = SharedData.require("text/tinystories_valid_head.txt").toString();
        Path routers = dir.resolve("routers.safetensors");
        try (Routers r = Routers.initialise(5, 64, 3)) {
            RouterFile.write(routers, r);
        }
        sameOnBoth(DeviceCliTest::figures, "eval", "--model", model, "--ppl", text, "--ctx", "256", "--json",
                "--routers", routers.toString());
        sameOnBoth(r -> r.out(), "generate", "--model", model, "--max-tokens", "16", "--routers", routers.toString());
    }

    /** Stage 1 on the device, calibrated, writes the same routers, byte for byte, as on the CPU, and ends as it does. */
    @Test
    void trainRoutersWritesWhatTheCpuWrites(@TempDir Path dir) throws Exception {
        String model = SharedData.require("models/stories260K/stories260K.gguf").toString();
        String text = SharedData.require("text/tinystories_valid_head.txt").toString();
        List<byte[]> routers = new ArrayList<>();
        sameOnBoth(r -> {
            Path out = dir.resolve("run" + routers.size());
            try {
                routers.add(Files.readAllBytes(out.resolve("routers.safetensors")));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            return r.out(); // the final held-out figures, after the calibration that shifted the device's bias too
        }, () -> new String[] {"train-routers", "--model", model, "--data", text, "--sparsity", "0.25", "--steps", "3",
                "--batch", "2", "--seq-len", "32", "--eval-every", "2", "--calibrate", "--out",
                dir.resolve("run" + routers.size()).toString()});
        assertEquals(2, routers.size());
        assertArrayEquals(routers.get(0), routers.get(1));
    }

    @Test
    void benchRunsDenseAndRoutedOnTheDevice() {
        // timings differ run to run; the phases and what the seeded routing realised must not
        sameOnBoth(DeviceCliTest::benchRouting, "bench", "--shape", "tiny", "--layers", "2", "--pp", "16", "--tg", "2",
                "--reps", "1", "--warmup", "0", "--sparsity", "0.25", "--json");
        sameOnBoth(DeviceCliTest::benchRouting, "bench", "--shape", "tiny", "--layers", "2", "--pp", "8", "--tg", "2",
                "--batch", "3", "--context", "4", "--reps", "1", "--warmup", "0", "--sparsity", "0.4", "--json");
        // the table on a device leaves out the process's CPU time, which says nothing about device work
        DeviceOptions.deviceForTests = EmulatedDevice::new;
        CliTest.Run table = CliTest.run("bench", "--shape", "tiny", "--layers", "1", "--pp", "8", "--tg", "2", "--reps", "1",
                "--warmup", "0", "--sparsity", "0.4", "--device", "cuda");
        assertEquals(0, table.code(), table.err());
        assertTrue(table.out().contains("| test | variant | sparsity | tok/s | speed-up | FLOP bound |")
                && !table.out().contains("CPU share") && table.out().contains("| tg2 | random 0.40 |"), table.out());
    }

    // bench --json without its timings: per row the phase, variant, realised sparsity and FLOP bound.
    private static String benchRouting(CliTest.Run r) {
        StringBuilder out = new StringBuilder();
        for (JsonElement e : JsonParser.parseString(r.out()).getAsJsonObject().getAsJsonArray("results")) {
            JsonObject row = e.getAsJsonObject();
            out.append(row.get("test").getAsString()).append(' ').append(row.get("variant").getAsString()).append(' ')
                    .append(row.get("module_sparsity").getAsDouble()).append(' ')
                    .append(row.get("flop_bound").getAsDouble()).append('\n');
        }
        return out.toString();
    }

    /** Runs the command on the CPU and on the emulated device; the part of the output chosen must agree. */
    private void sameOnBoth(Function<CliTest.Run, String> part, String... args) {
        sameOnBoth(part, () -> args);
    }

    /** As above, with the arguments made afresh for each run (after the CPU run's part was taken). */
    private void sameOnBoth(Function<CliTest.Run, String> part, Supplier<String[]> argsOf) {
        String[] args = argsOf.get();
        CliTest.Run cpu = CliTest.run(with(args, "cpu"));
        assertEquals(0, cpu.code(), cpu.err());
        String cpuPart = part.apply(cpu);
        args = argsOf.get();
        DeviceOptions.deviceForTests = () -> {
            EmulatedDevice d = new EmulatedDevice();
            opened.add(d);
            return d;
        };
        CliTest.Run device = CliTest.run(with(args, "cuda"));
        DeviceOptions.deviceForTests = null;
        assertEquals(0, device.code(), device.err());
        assertEquals(cpuPart, part.apply(device), String.join(" ", args));
        assertTrue(!opened.isEmpty(), "the command opened the device");
        for (EmulatedDevice d : opened) assertEquals(0, d.liveTensors(), "device tensors left open by " + args[0]);
        opened.clear();
    }

    /** A JSON report without what differs between runs or backends: the device's name and timings. */
    private static String figures(CliTest.Run run) {
        return strip(JsonParser.parseString(run.out())).toString();
    }

    private static JsonElement strip(JsonElement e) {
        if (e.isJsonArray()) {
            JsonArray out = new JsonArray();
            e.getAsJsonArray().forEach(x -> out.add(strip(x)));
            return out;
        }
        if (!e.isJsonObject()) return e;
        JsonObject out = new JsonObject();
        for (var entry : e.getAsJsonObject().entrySet()) {
            String k = entry.getKey();
            if (k.equals("device") || k.contains("seconds") || k.contains("per_s") || k.endsWith("_ms")) continue;
            out.add(k, strip(entry.getValue()));
        }
        return out;
    }

    private static String[] with(String[] args, String device) {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--device");
        all.add(device);
        return all.toArray(String[]::new);
    }
}
