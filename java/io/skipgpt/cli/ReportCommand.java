package io.skipgpt.cli;

import io.skipgpt.eval.Perplexity;
import io.skipgpt.eval.Plots;
import io.skipgpt.eval.RecordingGate;
import io.skipgpt.eval.TrainLog;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.Gate;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.RouterGate;
import io.skipgpt.routing.Routers;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.routing.StaticSkip;
import io.skipgpt.tensor.Backend;
import io.skipgpt.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "report", mixinStandardHelpOptions = true,
        description = {"One markdown report on trained routers, with pictures: perplexity dense vs routed (and a static",
                "--skip baseline), sparsity, FLOP saving and per-layer keep rates on --text; keep.png (keep rate per",
                "layer, attention and MLP); tokens.png (which modules ran for each of the first --tokens tokens of",
                "--text); training.png (loss, CE, sparsity, tau, held-out ppl from --train-log). Writes DIR/report.md."},
        footer = {"", "Example:",
                "  skipgpt report --model ../shared/data/models/stories260K/stories260K.gguf \\",
                "      --routers runs/r25/routers.safetensors --train-log runs/r25/train.jsonl \\",
                "      --text ../shared/data/text/tinystories_valid_head.txt --ctx 512 --skip attn:2,attn:4 --out runs/r25/report"})
final class ReportCommand implements Callable<Integer> {
    @Mixin
    ModelOptions options;

    @Option(names = "--routers", required = true, paramLabel = "FILE", description = "Router file from train-routers.")
    Path routers;

    @Option(names = "--routing", paramLabel = "MODE", defaultValue = "deterministic",
            description = "deterministic or sample (seeded by --routing-seed). Default: ${DEFAULT-VALUE}.")
    String mode;

    @Option(names = "--routing-seed", paramLabel = "S", defaultValue = "0", description = "Seed of --routing sample.")
    long seed;

    @Option(names = "--skip", paramLabel = "LIST", description = "A static skip set to compare with, e.g. from static-skip.")
    String skip;

    @Option(names = "--text", required = true, paramLabel = "FILE",
            description = "Held-out text: perplexity and keep rates over all of it, the token map from its first document.")
    Path text;

    @Option(names = "--tokens", defaultValue = "64", paramLabel = "N",
            description = "Tokens of the token map, BOS included (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--train-log", paramLabel = "FILE", description = "train.jsonl of the run that made the routers.")
    Path trainLog;

    @Option(names = "--ctx", paramLabel = "C", description = "Context window (default: the model's).")
    Integer ctx;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    private record Row(String label, Perplexity.Result ppl, RoutingStats stats) {}

    @Override
    public Integer call() throws Exception {
        if (tokens < 2) throw new IllegalArgumentException("--tokens must be at least 2");
        RouterGate.Mode m = RoutingOptions.mode(mode);
        String body = Files.readString(text, StandardCharsets.UTF_8);
        TrainLog log = trainLog != null ? TrainLog.read(trainLog) : null;
        Files.createDirectories(out);
        try (LoadedModel loaded = options.load(); Backend backend = options.backend();
                LlamaModel model = ModelOptions.model(loaded, backend);
                Routers r = RouterFile.read(routers, loaded.config().nLayers(), loaded.config().dim())) {
            int context = ctx != null ? ctx : loaded.config().contextLength();
            List<Row> rows = new ArrayList<>();
            rows.add(score("dense", Gate.DENSE, model, loaded.tokenizer(), context, body));
            if (skip != null) {
                rows.add(score("static " + skip, StaticSkip.parse(skip, loaded.config().nLayers()), model, loaded.tokenizer(),
                        context, body));
            }
            Row routed;
            try (RouterGate gate = new RouterGate(r, backend, m, seed)) {
                routed = score("routers " + routers.getFileName(), gate, model, loaded.tokenizer(), context, body);
                rows.add(routed);
                Plots.write(Plots.keepHeatmap(String.format(Locale.ROOT, "Keep rate per layer: %s on %s (%,d positions)",
                        routers.getFileName(), text.getFileName(), routed.stats().tokens()),
                        routed.stats().attnKeep(), routed.stats().mlpKeep()), out.resolve("keep.png"));
                tokenMap(model, loaded.tokenizer(), gate, Perplexity.documents(body).get(0));
            }
            if (log != null) {
                Plots.write(Plots.trainingCurves("Router training: " + trainLog, log), out.resolve("training.png"));
            }
            Path md = out.resolve("report.md");
            Files.writeString(md, markdown(rows, routed, log, loaded.path(), context), StandardCharsets.UTF_8);
            System.out.println("wrote " + md + ", keep.png, tokens.png" + (log != null ? ", training.png" : ""));
        }
        return 0;
    }

    private Row score(String label, Gate gate, LlamaModel model, Tokenizer tokenizer, int context, String body) {
        RoutingStats stats = new RoutingStats(model.config());
        Progress progress = new Progress(label + ": scored", "tokens");
        Perplexity.Result ppl = new Perplexity(model, tokenizer, context, Routing.routed(gate, stats)).score(body, progress::update);
        System.err.printf("%s: ppl %.4f, module sparsity %.4f%n", label, ppl.ppl(), stats.moduleSparsity());
        return new Row(label, ppl, stats);
    }

    // One forward pass over the first tokens of the document, every decision recorded; labels are each token's text.
    private void tokenMap(LlamaModel model, Tokenizer tokenizer, Gate gate, String doc) throws java.io.IOException {
        int[] ids = tokenizer.encodeWithBos(doc);
        int n = Math.min(tokens, ids.length);
        ids = java.util.Arrays.copyOf(ids, n);
        RecordingGate recorder = new RecordingGate(gate, model.config().nLayers());
        try (KvCache cache = model.newCache(n)) {
            model.forward(ids, cache, null, Routing.routed(recorder, null));
        }
        List<String> labels = new ArrayList<>(List.of("<s>"));
        String before = "";
        for (int i = 1; i < n; i++) {
            String upTo = tokenizer.decode(Arrays.copyOfRange(ids, 1, i + 1));
            labels.add(upTo.startsWith(before) ? upTo.substring(before.length()) : tokenizer.decode(new int[] {ids[i]}));
            before = upTo;
        }
        Plots.write(Plots.tokenMap(String.format(Locale.ROOT, "Modules run per token: %s, first %d tokens of %s",
                routers.getFileName(), n, text.getFileName()), labels, recorder.attention(), recorder.mlp()),
                out.resolve("tokens.png"));
    }

    private String markdown(List<Row> rows, Row routed, TrainLog log, Path model, int context) {
        StringBuilder b = new StringBuilder();
        b.append("# SkipGPT report\n\n");
        b.append(String.format(Locale.ROOT, "Model `%s`, routers `%s` (%s routing), text `%s`, context %d, %s.%n%n",
                model, routers, mode, text, context, LocalDate.now()));
        b.append("## Quality and cost\n\n");
        b.append("Over every position of the text (BOS included). Module sparsity: skipped (token, layer, module)\n"
                + "decisions. Parameter sparsity as the SkipGPT paper counts it. FLOP saving of the decoder layers (a skipped\n"
                + "attention still computes K and V); FLOP bound = dense / routed FLOPs, the speed-up skipping can at best give.\n\n");
        b.append("| variant | ppl | vs dense | module sparsity | param sparsity | FLOP saving | FLOP bound |\n");
        b.append("|---|---:|---:|---:|---:|---:|---:|\n");
        double dense = rows.get(0).ppl().ppl();
        for (Row r : rows) {
            RoutingStats s = r.stats();
            b.append(String.format(Locale.ROOT, "| %s | %.4f | %+.1f%% | %.3f | %.3f | %.3f | %.3f |%n", r.label(),
                    r.ppl().ppl(), 100 * (r.ppl().ppl() / dense - 1), s.moduleSparsity(), s.paramSparsity(),
                    s.flopSaving(), s.flopBound()));
        }
        b.append(String.format(Locale.ROOT, "%n%,d tokens predicted, %d documents.%n%n", rows.get(0).ppl().tokens(),
                rows.get(0).ppl().documents()));
        b.append("## Keep rate per layer (routers)\n\n| layer | attention | MLP |\n|---:|---:|---:|\n");
        double[] attn = routed.stats().attnKeep(), mlp = routed.stats().mlpKeep();
        for (int l = 0; l < attn.length; l++) b.append(String.format(Locale.ROOT, "| %d | %.3f | %.3f |%n", l, attn[l], mlp[l]));
        b.append("\n![keep rate per layer](keep.png)\n\n");
        b.append("## Where tokens skip\n\nThe first tokens of the text's first document in one forward pass: a dark cell is a\n"
                + "module that ran for that token, a light one a module it skipped.\n\n![modules run per token](tokens.png)\n");
        if (log != null) {
            b.append("\n## Training\n\n");
            b.append(String.format(Locale.ROOT, "`%s`, last step:", trainLog));
            for (String f : List.of("step", "loss", "ce", "sparsity", "tau", "eval_ppl", "eval_sparsity")) {
                TrainLog.Series s = log.series(f.equals("step") ? "loss" : f);
                if (s == null) continue;
                int last = s.values().length - 1;
                double v = f.equals("step") ? s.steps()[last] : s.values()[last];
                b.append(String.format(Locale.ROOT, " %s %s", f, f.equals("step") ? Long.toString((long) v) : String.format(Locale.ROOT, "%.4f", v)));
            }
            b.append(".\n\n![training curves](training.png)\n");
        }
        return b.toString();
    }
}
