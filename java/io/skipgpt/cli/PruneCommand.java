package io.skipgpt.cli;

import io.skipgpt.eval.Perplexity;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.lora.PeftDirectory;
import io.skipgpt.model.Adapter;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.Gate;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Backend;
import io.skipgpt.train.HeldOut;
import io.skipgpt.train.LoraTrainer;
import io.skipgpt.train.Optimization;
import io.skipgpt.train.RouterTrainer;
import io.skipgpt.train.TokenDataset;
import io.skipgpt.io.AtomicFiles;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "prune", mixinStandardHelpOptions = true,
        description = {"The whole SkipGPT job in one command: stage 1 (router tuning to the target sparsity, the execute",
                "threshold then calibrated on training data so that deterministic routing realises it), stage 2 (LoRA",
                "with the routers frozen), evaluation of dense vs router-tuned vs router-tuned + LoRA (held-out",
                "perplexity, module sparsity, FLOP saving), and a merged model. Writes into DIR:",
                "  routers/routers.safetensors   stage 1 (with its log and checkpoints)",
                "  adapter/                      stage 2, a PEFT adapter directory (with its log and checkpoints)",
                "  merged/                       a Hugging Face directory with the adapter folded in, routers beside it",
                "  report.md                     the figures, the settings and the commands to reproduce them",
                "Held-out text: the --eval files, or else the held-out share of the --data examples."},
        footer = {"", "Example (the demo's settings; a few minutes on 2 cores):",
                "  skipgpt prune --model ../shared/data/models/stories260K/stories260K.gguf \\",
                "      --data ../shared/data/text/tinystories_valid_part2.txt \\",
                "      --eval ../shared/data/text/tinystories_valid_head.txt --ctx 512 --sparsity 0.25 \\",
                "      --router-steps 300 --lora-steps 200 --lora-lr 2e-3 --out runs/demo"})
final class PruneCommand implements Callable<Integer> {
    @Mixin
    ModelOptions options;

    @Mixin
    DataOptions data;

    @Option(names = "--sparsity", required = true, paramLabel = "T", description = "Target fraction of skipped modules, e.g. 0.25.")
    double sparsity;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Option(names = "--eval", arity = "1..*", paramLabel = "FILE",
            description = "Held-out text files for the report (default: the held-out share of --data).")
    List<Path> eval;

    @Option(names = "--ctx", paramLabel = "C", description = "Context window for --eval (default: the model's).")
    Integer ctx;

    @Option(names = "--router-steps", defaultValue = "300", paramLabel = "N", description = "Stage 1 optimizer steps (default: ${DEFAULT-VALUE}).")
    int routerSteps;

    @Option(names = "--router-lr", defaultValue = "5e-3", paramLabel = "LR", description = "Stage 1 learning rate, constant (default: ${DEFAULT-VALUE}).")
    double routerLr;

    @Option(names = "--penalty", defaultValue = "8", paramLabel = "A",
            description = "Stage 1 weight alpha of the sparsity penalty (default: ${DEFAULT-VALUE}, the paper's).")
    double penalty;

    @Option(names = "--lora-steps", defaultValue = "200", paramLabel = "N", description = "Stage 2 optimizer steps (default: ${DEFAULT-VALUE}).")
    int loraSteps;

    @Option(names = "--lora-lr", defaultValue = "2e-4", paramLabel = "LR",
            description = "Stage 2 peak learning rate, cosine after a warm-up of a tenth of the steps (default: ${DEFAULT-VALUE}).")
    double loraLr;

    @Mixin
    TrainLoraCommand.LoraShape shape;

    @Option(names = "--gates", defaultValue = "deterministic", paramLabel = "MODE",
            description = {"Stage 2 gates: deterministic (default: the adapter trains on the routing inference uses;",
                    "on stories260K it recovers clearly more than sampling at equal sparsity, see",
                    "benchmarks/stage2-stories260K.md) or sample (tau = 1, as train-lora and the paper do)."})
    String gates;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "Seed of everything random (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--resume", description = "Continue both stages from their latest checkpoints in DIR (same settings).")
    boolean resume;

    /** One configuration's held-out figures. */
    private record Figures(String name, double ppl, double moduleSparsity, double flopSaving) {}

    @Override
    public Integer call() throws Exception {
        if (eval != null) for (Path f : eval) if (!Files.isRegularFile(f)) throw new NoSuchFileException(f.toString());
        RouterTrainer.Options stage1 = new RouterTrainer.Options(sparsity, penalty, true, new Optimization(routerSteps, data.batch, 1, routerLr, "constant", 0, 0.01, 1.0, seed, 0, 50));
        LoraTrainer.Options stage2 = new LoraTrainer.Options(shape.config(), TrainLoraCommand.gates(gates), new Optimization(loraSteps, data.batch, 1, loraLr, "cosine", loraSteps / 10, 0.0, 1.0, seed, 0, 50));
        Path routerDir = out.resolve("routers"), adapterDir = out.resolve("adapter"), mergedDir = out.resolve("merged");
        try (LoadedModel m = options.load(); Backend backend = options.backend()) {
            TokenDataset dataset = data.load(m.tokenizer(), seed);
            Map<Path, List<int[]>> evalDocs = new LinkedHashMap<>(); // --eval files, encoded once for the three rows
            if (eval != null) {
                for (Path f : eval) evalDocs.put(f, Perplexity.encode(m.tokenizer(), Files.readString(f, StandardCharsets.UTF_8)));
            }
            long t0 = System.nanoTime();
            System.err.printf("prune [1/4] stage 1: routers to sparsity %.2f, %d steps -> %s%n", sparsity, routerSteps, routerDir);
            new RouterTrainer(m.config(), m.weights(), backend, dataset, stage1, routerDir, System.err).run(resume);
            long t1 = System.nanoTime();
            Path routerFile = RouterTrainer.routersFile(routerDir);
            try (Routers routers = RouterFile.read(routerFile, m.config().nLayers(), m.config().dim())) {
                System.err.printf("prune [2/4] stage 2: LoRA (%s, rank %d) with the routers frozen, %d steps -> %s%n",
                        stage2.lora().targetList(), stage2.lora().rank(), loraSteps, adapterDir);
                new LoraTrainer(m.config(), m.weights(), backend, dataset, routers, stage2, adapterDir, m.path().toString(),
                        System.err).run(resume);
                long t2 = System.nanoTime();
                System.err.printf("prune [3/4] evaluation on %s%n", eval != null ? eval : "the held-out examples");
                List<Figures> rows = new ArrayList<>();
                // the adapter as written, on the host: for the merge, and the model copies it to a device
                try (LoraAdapter lora = PeftDirectory.read(adapterDir, m.config())) {
                    rows.add(evaluate("dense", m, backend, dataset, evalDocs, null, Adapter.NONE));
                    rows.add(evaluate("routers (stage 1)", m, backend, dataset, evalDocs, routers, Adapter.NONE));
                    rows.add(evaluate("routers + LoRA (stage 2)", m, backend, dataset, evalDocs, routers, lora));
                    System.err.printf("prune [4/4] merging the adapter -> %s%n", mergedDir);
                    MergeCommand.write(m, lora, routers, mergedDir);
                }
                String report = report(m, backend, rows, (t1 - t0) / 1e9, (t2 - t1) / 1e9);
                AtomicFiles.write(out.resolve("report.md"), report.getBytes(StandardCharsets.UTF_8));
                System.out.print(report);
                System.err.printf("wrote %s%n", out.resolve("report.md"));
            }
        }
        return 0;
    }

    // evalDocs: the --eval files' documents, encoded; empty for the held-out share of --data
    private Figures evaluate(String name, LoadedModel m, Backend backend, TokenDataset dataset,
                             Map<Path, List<int[]>> evalDocs, Routers routers, Adapter adapter) throws Exception {
        Figures f;
        if (evalDocs.isEmpty()) {
            HeldOut h = HeldOut.evaluate(m.config(), m.weights(), backend, dataset, routers, adapter);
            f = new Figures(name, h.ppl(), h.moduleSparsity(), h.flopSaving());
        } else {
            RoutingStats stats = new RoutingStats(m.config());
            try (LlamaModel model = new LlamaModel(m.config(), m.weights(), backend, adapter);
                    RouterGate gate = routers == null ? null : new RouterGate(routers, backend, RouterGate.Mode.DETERMINISTIC, 0)) {
                Perplexity ppl = new Perplexity(model, m.tokenizer(), context(m), Routing.routed(gate == null ? Gate.DENSE : gate, stats));
                Perplexity.Result total = new Perplexity.Result(0, 0, 0);
                for (Map.Entry<Path, List<int[]>> file : evalDocs.entrySet()) {
                    Progress progress = new Progress("  " + name + ": " + file.getKey().getFileName() + " scored", "tokens");
                    total = total.plus(ppl.score(file.getValue(), progress::update));
                }
                f = new Figures(name, total.ppl(), stats.moduleSparsity(), stats.flopSaving());
            }
        }
        System.err.printf("  %-26s ppl %.4f  module sparsity %.4f  FLOP saving %.4f%n", name, f.ppl(), f.moduleSparsity(),
                f.flopSaving());
        return f;
    }

    private int context(LoadedModel m) {
        return ctx != null ? ctx : m.config().contextLength();
    }

    private String report(LoadedModel m, Backend backend, List<Figures> rows, double stage1Seconds,
                          double stage2Seconds) {
        StringBuilder b = new StringBuilder();
        b.append(String.format("# SkipGPT prune: %s at target sparsity %.2f%n%n", m.path().getFileName(), sparsity));
        b.append(String.format("%s, device %s, %d processors.%n%n",
                ZonedDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm 'UTC'")),
                backend.name(), Runtime.getRuntime().availableProcessors()));
        b.append("| model | held-out PPL | module sparsity | FLOP saving |\n|---|---:|---:|---:|\n");
        for (Figures f : rows) {
            b.append(String.format("| %s | %.4f | %.4f | %.4f |%n", f.name(), f.ppl(), f.moduleSparsity(), f.flopSaving()));
        }
        String held = eval != null ? String.join(", ", eval.stream().map(Path::toString).toList()) + " (ctx " + context(m) + ")"
                : "the held-out share (" + data.holdout + ") of the training examples";
        b.append(String.format("%nHeld-out text: %s. Routing is deterministic (a module runs iff its router's execute "
                + "logit wins); the FLOP saving counts that an attention skip still computes K and V.%n%n", held));
        b.append(String.format("- training data: %s, sequences of %d tokens, batch %d, seed %d%n",
                String.join(", ", data.files.stream().map(Path::toString).toList()), data.seqLen, data.batch, seed));
        b.append(String.format("- stage 1: %d steps, lr %s constant, penalty alpha %s, tau 5 -> 1, threshold calibrated "
                + "on training data; %.0f s%n", routerSteps, routerLr, penalty, stage1Seconds));
        b.append(String.format("- stage 2: %d steps, lr %s cosine, LoRA %s rank %d alpha %s dropout %s, gates %s; %.0f s%n",
                loraSteps, loraLr, shape.targets, shape.rank, shape.alpha, shape.dropout, gates, stage2Seconds));
        b.append(String.format("%nFiles:%n%n- routers: `%s`%n- adapter (PEFT): `%s`%n- merged model (Hugging Face, routers "
                        + "beside it): `%s`%n", RouterTrainer.routersFile(out.resolve("routers")), out.resolve("adapter"),
                out.resolve("merged")));
        if (eval != null) {
            String files = String.join(" ", eval.stream().map(Path::toString).toList());
            b.append(String.format("%nThe last row again, from the merged model:%n%n```%nskipgpt eval --model %s --routers %s "
                    + "--ppl %s --ctx %d --json%n```%n", out.resolve("merged"), out.resolve("merged/routers.safetensors"),
                    files, context(m)));
        }
        return b.toString();
    }
}
