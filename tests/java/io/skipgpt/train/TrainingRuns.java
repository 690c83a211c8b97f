package io.skipgpt.train;

import com.google.gson.JsonParser;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * Short runs of both trainers on some backend, read back for comparison across backends: the per-step losses from
 * the run's JSONL log and every tensor of its last checkpoint. A run stops after {@code stopAfter} steps, before its
 * schedule ends, as an interrupted run would: it never reaches the final held-out evaluation, which runs the
 * inference model, not the training pass these runs compare.
 */
final class TrainingRuns {
    private TrainingRuns() {}

    /** Losses of steps 1, 2, ...; checkpoint tensors (parameters, then optimizer moments) by name. */
    record Run(double[] losses, Map<String, float[]> tensors) {}

    static Run routers(LlamaConfig config, LlamaWeights weights, Backend backend, TokenDataset data,
                       RouterTrainer.Options options, Path out, long stopAfter, boolean resume) throws IOException {
        new RouterTrainer(config, weights, backend, data, options, out, quiet()).runUntil(resume, stopAfter);
        return read(out);
    }

    static Run lora(LlamaConfig config, LlamaWeights weights, Backend backend, TokenDataset data, Routers routers,
                    LoraTrainer.Options options, Path out, long stopAfter, boolean resume) throws IOException {
        new LoraTrainer(config, weights, backend, data, routers, options, out, "test", quiet()).runUntil(resume, stopAfter);
        return read(out);
    }

    private static Run read(Path out) throws IOException {
        double[] losses = Files.readAllLines(out.resolve("train.jsonl")).stream()
                .map(line -> JsonParser.parseString(line).getAsJsonObject())
                .filter(o -> o.has("loss"))
                .mapToDouble(o -> o.get("loss").getAsDouble())
                .toArray();
        Map<String, float[]> tensors = new TreeMap<>();
        Path last = Checkpoint.latest(out.resolve("checkpoints")).orElseThrow();
        try (Checkpoint.Loaded c = Checkpoint.load(last)) {
            for (Map.Entry<String, Tensor> e : c.tensors().entrySet()) tensors.put(e.getKey(), e.getValue().toFloatArray());
        }
        return new Run(losses, tensors);
    }

    /** The largest |a − b| / |a| over the steps' losses. */
    static double lossDifference(Run a, Run b) {
        if (a.losses.length != b.losses.length) throw new AssertionError("runs of different lengths");
        double worst = 0;
        for (int i = 0; i < a.losses.length; i++) {
            worst = Math.max(worst, Math.abs(a.losses[i] - b.losses[i]) / Math.abs(a.losses[i]));
        }
        return worst;
    }

    /** The largest |a − b| / max(1, |a|) over the trained parameters (optimizer moments left out). */
    static double parameterDifference(Run a, Run b) {
        if (!a.tensors.keySet().equals(b.tensors.keySet())) throw new AssertionError("checkpoints of other tensors");
        double worst = 0;
        for (Map.Entry<String, float[]> e : a.tensors.entrySet()) {
            if (e.getKey().startsWith("optimizer.")) continue;
            float[] x = e.getValue(), y = b.tensors.get(e.getKey());
            for (int i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / Math.max(1, Math.abs(x[i])));
        }
        return worst;
    }

    /** Both runs' losses step by step and the largest differences, each line starting with "PARITY ". */
    static void print(String what, String aName, Run a, String bName, Run b) {
        for (int i = 0; i < a.losses.length; i++) {
            System.out.printf("PARITY %s step %2d  %s %.7f  %s %.7f  rel %.1e%n", what, i + 1, aName, a.losses[i], bName,
                    b.losses[i], Math.abs(a.losses[i] - b.losses[i]) / Math.abs(a.losses[i]));
        }
        System.out.printf("PARITY %s: max relative difference of the losses %.2e, of the parameters %.2e%n", what,
                lossDifference(a, b), parameterDifference(a, b));
    }

    /** Somewhere for a trainer's progress lines to go unread. */
    static PrintStream quiet() {
        return new PrintStream(new ByteArrayOutputStream());
    }

    /** Log lines without their timings (milliseconds, tokens per second), which differ from run to run. */
    static List<String> withoutTimings(List<String> lines) {
        return lines.stream().map(l -> l.replaceAll("\"(ms|tokens_per_s)\":[^,}]*", "")).toList();
    }
}
