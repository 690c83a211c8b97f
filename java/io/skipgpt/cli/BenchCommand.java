package io.skipgpt.cli;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.skipgpt.eval.Bench;
import io.skipgpt.eval.OpProfile;
import io.skipgpt.eval.RandomGate;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.io.ModelLoader;
import io.skipgpt.model.LlamaConfig;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.model.LlamaWeights;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Device;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Prefill (pp) and decode (tg) speed in tokens/s: warm-up, repetitions, median and range.",
                "Either a real model (--model) or a random model of a real architecture (--shape) with fewer layers.",
                "Dense and routed run on the same weights in the same run, repetitions interleaved: forced random",
                "routing at each --sparsity (every module of every token skipped with probability T, seeded) and/or",
                "trained --routers. Each routed figure comes with its speed-up over dense, the FLOP bound of the skip",
                "pattern it realised (decoder layers; and the whole pass, output head included) and speed-up / bound.",
                "--batch B decodes B sequences at once (each after a --context C token prompt), as a server does.",
                "A list of batch sizes (--batch 16,1) runs the decode phase for each on the same model.",
                "--record appends the figures with date, machine, load, commit and command line as one JSON line."},
        footer = {"", "Examples:",
                "  skipgpt bench --model ../shared/data/models/stories260K/stories260K.gguf",
                "  skipgpt bench --shape llama2-7b --layers 2 --pp 128 --tg 16 --sparsity 0.25,0.40 \\",
                "      --record benchmarks/results.jsonl",
                "  skipgpt bench --shape llama3-8b --layers 4 --pp 4096 --tg 32 --batch 16 --context 512 \\",
                "      --sparsity 0.25,0.40 --device cuda"})
final class BenchCommand implements Callable<Integer> {
    @Mixin
    ModelOrShapeOptions source;

    @Option(names = "--pp", defaultValue = "128", paramLabel = "N", description = "Prompt tokens (default: ${DEFAULT-VALUE}).")
    int pp;

    @Option(names = "--tg", defaultValue = "32", paramLabel = "N", description = "Generated tokens (default: ${DEFAULT-VALUE}).")
    int tg;

    @Option(names = "--batch", defaultValue = "1", split = ",", paramLabel = "B",
            description = "Sequences decoded together in each tg step; a list runs the tg phase once per size, e.g. 16,1"
                    + " (default: ${DEFAULT-VALUE}).")
    List<Integer> batches;

    @Option(names = "--context", defaultValue = "0", paramLabel = "C",
            description = "Tokens already in each sequence's cache when tg starts (default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--reps", defaultValue = "3", paramLabel = "N", description = "Timed repetitions (default: ${DEFAULT-VALUE}).")
    int reps;

    @Option(names = "--warmup", defaultValue = "1", paramLabel = "N", description = "Untimed warm-up runs (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--sparsity", split = ",", paramLabel = "T",
            description = "Also run forced random routing at these target sparsities, e.g. 0.25,0.40.")
    List<Double> sparsities;

    @Option(names = "--gate-seed", defaultValue = "7", paramLabel = "S",
            description = "Seed of the random routing (default: ${DEFAULT-VALUE}).")
    long gateSeed;

    @Option(names = "--routers", paramLabel = "FILE", description = "Also run these trained routers (deterministic).")
    Path routers;

    @Mixin
    DeviceOptions device;

    @Option(names = "--json", description = "Print one JSON object instead of a table.")
    boolean json;

    @Option(names = "--record", paramLabel = "FILE",
            description = "Append the figures, date, machine, commit and command line as one JSON line, e.g. benchmarks/results.jsonl.")
    Path record;

    @Option(names = "--profile", description = "Then run each variant and phase again (one warm-up, --reps timed) with"
            + " every op timed, and print the mean milliseconds per op and run (matmuls by weight shape): where the time goes.")
    boolean profile;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        for (double t : sparsities == null ? List.<Double>of() : sparsities) {
            if (!(t > 0 && t < 1)) throw new IllegalArgumentException("--sparsity values must be in (0, 1), got " + t);
        }
        if (batches.stream().anyMatch(b -> b < 1) || context < 0) {
            throw new IllegalArgumentException("--batch sizes must be >= 1 and --context >= 0");
        }
        String what;
        LlamaConfig config;
        LlamaWeights weights;
        if (source.model() != null) {
            LoadedModel loaded = ModelLoader.load(source.model(), null);
            config = loaded.config();
            weights = loaded.weights();
            what = source.model().toString();
            try {
                checkFits(config);
            } catch (IllegalArgumentException e) {
                weights.close();
                throw e;
            }
        } else {
            config = source.shapeConfig();
            checkFits(config); // before building random weights: gigabytes for a large shape
            weights = source.randomWeights(config);
            what = source.shape() + " x" + config.nLayers() + " layers (random weights)";
        }
        // Closing the weights frees a loaded model too: LoadedModel owns nothing else native.
        try (weights; Backend backend = device.open();
                LlamaModel model = new LlamaModel(config, weights, backend);
                Routers trained = routers != null ? RouterFile.read(routers, config.nLayers(), config.dim()) : null;
                RouterGate routerGate = trained != null ? new RouterGate(trained, backend, RouterGate.Mode.DETERMINISTIC, 0) : null) {
            List<Bench.Variant> variants = new ArrayList<>(List.of(Bench.Variant.DENSE));
            for (double t : sparsities == null ? List.<Double>of() : sparsities) {
                variants.add(new Bench.Variant(String.format(Locale.ROOT, "random %.2f", t), () -> new RandomGate(t, gateSeed)));
            }
            if (routerGate != null) variants.add(new Bench.Variant("routers " + routers.getFileName(), () -> routerGate));
            JsonObject line = record != null ? RunRecord.describe(spec.commandLine().getParseResult().originalArgs(), record) : null;
            Bench bench = new Bench(model, 42);
            if (profile && backend.device() != Device.CPU) {
                throw new IllegalArgumentException("--profile times each op from the host, which a device backend does"
                        + " not wait for: use it with --device cpu");
            }
            List<Bench.Result> results = new ArrayList<>(bench.prefill(variants, pp, warmup, reps));
            for (int batch : batches) results.addAll(decode(bench, batch, variants, warmup, reps));
            Map<String, Map<String, Map<String, Double>>> profiles = profile ? profileOps(config, weights, backend, variants) : null;
            JsonObject o = new JsonObject();
            o.addProperty("model", what);
            o.addProperty("device", backend.name());
            o.addProperty("threads", Runtime.getRuntime().availableProcessors());
            o.addProperty("warmup", warmup);
            JsonArray rows = new JsonArray();
            for (Bench.Result r : results) rows.add(json(r, dense(results, r)));
            o.add("results", rows);
            if (profiles != null) o.add("profile_ms", new com.google.gson.Gson().toJsonTree(profiles));
            if (line != null) {
                RunRecord.addLoadAfter(line);
                o.entrySet().forEach(e -> line.add(e.getKey(), e.getValue()));
                RunRecord.append(record, line);
                System.err.println("recorded in " + record);
            }
            if (json) {
                System.out.println(new GsonBuilder().disableHtmlEscaping().serializeSpecialFloatingPointValues().create().toJson(o));
            } else {
                // On a device the process's CPU time says nothing about the work: the table leaves it out.
                boolean cpu = backend.device() == Device.CPU;
                if (cpu) {
                    System.out.printf("%s on %s, %d cores available (OPENBLAS_NUM_THREADS=%s, OMP_NUM_THREADS=%s); tok/s:"
                            + " median of %d (min-max); CPU share: CPU time used / (wall time x cores), well below 1 when"
                            + " other work competed; per CPU-s: tokens per CPU second%n", what, backend.name(),
                            Runtime.getRuntime().availableProcessors(), System.getenv("OPENBLAS_NUM_THREADS"),
                            System.getenv("OMP_NUM_THREADS"), reps);
                } else {
                    System.out.printf("%s on %s; tok/s: median of %d (min-max)%n", what, backend.name(), reps);
                }
                System.out.printf("| test | variant | sparsity | tok/s |%s speed-up | FLOP bound | speed-up / bound"
                        + " | bound with head | speed-up / bound with head |%s%n|---|---|---:|---:|%s---:|---:|---:|---:|---:|%s%n",
                        cpu ? " CPU share |" : "", cpu ? " tok per CPU-s | speed-up by CPU time |" : "",
                        cpu ? "---:|" : "", cpu ? "---:|---:|" : "");
                for (Bench.Result r : results) {
                    Bench.Figures f = r.figures(), d = dense(results, r).figures();
                    double speedup = f.median() / d.median();
                    double bound = r.stats().flopBound();
                    System.out.printf(Locale.ROOT, "| %s | %s | %.3f | %.2f (%.2f-%.2f) |%s %.2f | %.2f | %.2f | %.2f | %.2f |%s%n",
                            f.label(), r.variant().label(), r.stats().moduleSparsity(), f.median(), f.min(), f.max(),
                            cpu ? String.format(Locale.ROOT, " %.2f |", f.cpuShare()) : "", speedup, bound,
                            speedup / bound, r.modelBound(), speedup / r.modelBound(),
                            cpu ? String.format(Locale.ROOT, " %.2f | %.2f |", f.perCpuSecond(),
                                    f.perCpuSecond() / d.perCpuSecond()) : "");
                }
                if (profiles != null) printProfiles(profiles);
            }
        }
        return 0;
    }

    private void checkFits(LlamaConfig config) {
        if (pp > config.contextLength() || context + tg > config.contextLength()) {
            throw new IllegalArgumentException("--pp and --context + --tg must fit the context of " + config.contextLength());
        }
    }

    // A tg phase: one sequence from an empty cache, or `batch` sequences after --context tokens each.
    private List<Bench.Result> decode(Bench bench, int batch, List<Bench.Variant> variants, int warmup, int reps) {
        return batch == 1 && context == 0 ? bench.decode(variants, tg, warmup, reps)
                : bench.decodeBatch(variants, tg, batch, context, warmup, reps);
    }

    // phase label -> variant label -> op -> milliseconds of one run
    private Map<String, Map<String, Map<String, Double>>> profileOps(LlamaConfig config, LlamaWeights weights, Backend backend,
                                                                     List<Bench.Variant> variants) {
        OpProfile ops = new OpProfile();
        Map<String, Map<String, Map<String, Double>>> out = new LinkedHashMap<>();
        try (LlamaModel timed = new LlamaModel(config, weights, ops.wrap(backend))) {
            Bench bench = new Bench(timed, 42);
            // pp, then a tg phase per batch size (named by its size when there are several)
            List<String> phases = new ArrayList<>(List.of("pp" + pp));
            for (int batch : batches) phases.add("tg" + tg + (batches.size() > 1 ? " x" + batch : ""));
            for (int p = 0; p < phases.size(); p++) {
                String phase = phases.get(p);
                Map<String, Map<String, Double>> byVariant = new LinkedHashMap<>();
                for (Bench.Variant v : variants) {
                    // one untimed pass (first touch of this model's buffers), then the mean over --reps passes
                    for (int round = 0; round < 2; round++) {
                        ops.reset();
                        int passes = round == 0 ? 1 : reps;
                        if (p == 0) {
                            bench.prefill(List.of(v), pp, 0, passes);
                        } else {
                            decode(bench, batches.get(p - 1), List.of(v), 0, passes);
                        }
                    }
                    Map<String, Double> perRun = new LinkedHashMap<>();
                    ops.millis().forEach((op, ms) -> perRun.put(op, ms / reps));
                    byVariant.put(v.label(), perRun);
                }
                out.put(phase, byVariant);
            }
        }
        return out;
    }

    private static void printProfiles(Map<String, Map<String, Map<String, Double>>> profiles) {
        for (Map.Entry<String, Map<String, Map<String, Double>>> phase : profiles.entrySet()) {
            Map<String, Map<String, Double>> byVariant = phase.getValue();
            Set<String> ops = new LinkedHashSet<>();
            byVariant.values().forEach(m -> ops.addAll(m.keySet()));
            System.out.printf("%n| %s: ms per run, by op |", phase.getKey());
            byVariant.keySet().forEach(v -> System.out.printf(" %s |", v));
            System.out.printf("%n|---|%s%n", "---:|".repeat(byVariant.size()));
            for (String op : ops) {
                System.out.printf("| %s |", op);
                byVariant.values().forEach(m -> System.out.printf(Locale.ROOT, " %.2f |", m.getOrDefault(op, 0.0)));
                System.out.println();
            }
            System.out.print("| **all ops** |");
            byVariant.values().forEach(m -> System.out.printf(Locale.ROOT, " %.2f |",
                    m.values().stream().mapToDouble(Double::doubleValue).sum()));
            System.out.println();
        }
    }

    /** The dense result of the same phase. */
    private static Bench.Result dense(List<Bench.Result> results, Bench.Result r) {
        for (Bench.Result x : results) {
            if (x.variant() == Bench.Variant.DENSE && x.figures().label().equals(r.figures().label())) return x;
        }
        throw new IllegalStateException("no dense figure for " + r.figures().label());
    }

    private static JsonObject json(Bench.Result r, Bench.Result dense) {
        Bench.Figures f = r.figures();
        double speedup = f.median() / dense.figures().median();
        JsonObject o = new JsonObject();
        o.addProperty("test", f.label());
        o.addProperty("batch", f.batch());
        o.addProperty("context", f.context());
        o.addProperty("variant", r.variant().label());
        o.addProperty("tokens_per_s", f.median());
        o.addProperty("min", f.min());
        o.addProperty("max", f.max());
        o.addProperty("reps", f.reps());
        o.addProperty("cpu_share", f.cpuShare());
        o.addProperty("tokens_per_cpu_s", f.perCpuSecond());
        o.addProperty("speedup_by_cpu_time", f.perCpuSecond() / dense.figures().perCpuSecond());
        o.addProperty("module_sparsity", r.stats().moduleSparsity());
        o.addProperty("flop_saving", r.stats().flopSaving());
        o.addProperty("speedup", speedup);
        o.addProperty("flop_bound", r.stats().flopBound());
        o.addProperty("speedup_over_bound", speedup / r.stats().flopBound());
        o.addProperty("flop_bound_with_head", r.modelBound());
        o.addProperty("speedup_over_bound_with_head", speedup / r.modelBound());
        return o;
    }
}
