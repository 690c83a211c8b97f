package io.skipgpt.cli;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.skipgpt.eval.Comparison;
import io.skipgpt.eval.Perplexity;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.lora.LoraAdapter;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Backend;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Perplexity of a model on text files, and zero-shot tasks (--tasks).",
                "A file with lines <|endoftext|> is split into documents, each stripped and scored alone as",
                "[BOS] + tokens; any other file is one document. Documents longer than the context C are cut",
                "into windows of C tokens overlapping by one, each from an empty cache, so every token after",
                "BOS is predicted exactly once. All predicted tokens of all files are pooled.",
                "--tasks scores zero-shot multiple choice as lm-evaluation-harness does (acc, acc_norm per character,",
                "WinoGrande by partial scoring, LAMBADA last-word greedy accuracy) on llm-foundry's data files;",
                "--compare runs several variants of the same weights side by side in one table."},
        footer = {"", "Example:",
                "  skipgpt eval --model ../shared/data/models/stories260K/stories260K.gguf \\",
                "      --ppl ../shared/data/text/tinystories_valid_head.txt --ctx 512 --json",
                "  skipgpt eval --model M --ppl FILE --routers out/routers.safetensors --json   # routed",
                "  skipgpt eval --model M --ppl FILE --skip attn:2,mlp:4                       # static skip",
                "  skipgpt eval --model M --ppl FILE --routers runs/demo/routers/routers.safetensors --lora runs/demo/adapter",
                "  skipgpt eval --model M --tasks arc_easy,copa,lambada --limit 100 \\",
                "      --compare dense --compare skip:attn:2,mlp:4 --compare routers:runs/r25/routers.safetensors"})
final class EvalCommand implements Callable<Integer> {
    @Mixin
    ModelOptions options;

    @Option(names = "--ppl", arity = "1..*", paramLabel = "FILE", description = "Text files to score.")
    List<Path> files;

    @Option(names = "--tasks", paramLabel = "LIST", description = "Zero-shot tasks, comma-separated: arc_easy, "
            + "arc_challenge, boolq, openbookqa, piqa, winogrande, copa, lambada, or all.")
    String tasks;

    @Option(names = "--limit", defaultValue = "0", paramLabel = "N",
            description = "Score the first N items of each task (default: all).")
    int limit;

    @Option(names = "--bench-data", paramLabel = "DIR",
            description = "Folder of the task files (default: $SKIPGPT_DATA/bench/llm-foundry or ../shared/data/bench/llm-foundry).")
    Path benchData;

    @Option(names = "--compare", paramLabel = "VARIANT", description = "A column of the comparison, repeatable: "
            + Variant.SYNTAX + ". Instead of --routers / --skip.")
    List<String> compare;

    @Option(names = "--out", paramLabel = "DIR", description = "With --tasks or --compare: also write DIR/eval.json and DIR/eval.md.")
    Path out;

    @Option(names = "--ctx", paramLabel = "C",
            description = "Context window (default: the model's trained context; stories260K was trained at 512).")
    Integer ctx;

    @Mixin
    RoutingOptions routingOptions;

    @Mixin
    LoraOptions loraOptions;

    @Option(names = "--json", description = "Print one JSON object (ppl, nll, tokens, documents, per-file figures; "
            + "with --tasks or --compare: per variant, task figures, perplexity and routing).")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (files == null && tasks == null) throw new IllegalArgumentException("give --ppl FILE... and/or --tasks LIST");
        for (Path f : files == null ? List.<Path>of() : files) {
            if (!Files.isRegularFile(f)) throw new java.nio.file.NoSuchFileException(f.toString());
        }
        if (tasks != null || compare != null) return new EvalComparison(this).run();
        try (LoadedModel m = options.load(); Backend backend = options.backend();
                LoraAdapter lora = loraOptions.open(m.config());
                LlamaModel model = ModelOptions.model(m, backend, lora);
                Routing routing = routingOptions.open(m.config(), backend, new RoutingStats(m.config()))) {
            int context = ctx != null ? ctx : m.config().contextLength();
            RoutingStats stats = routing.stats(); // null without --routers / --skip, when it is not printed
            Perplexity ppl = new Perplexity(model, m.tokenizer(), context, routing);
            Perplexity.Result total = new Perplexity.Result(0, 0, 0);
            JsonArray perFile = new JsonArray();
            long t0 = System.nanoTime();
            for (Path f : files) {
                String text = Files.readString(f, StandardCharsets.UTF_8);
                Progress progress = new Progress(f.getFileName() + ": scored", "tokens");
                Perplexity.Result r = ppl.score(text, progress::update);
                System.err.printf("%s: %d tokens, %d documents, ppl %.4f%n", f, r.tokens(), r.documents(), r.ppl());
                total = total.plus(r);
                perFile.add(figures(r, f.toString()));
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            if (json) {
                JsonObject o = figures(total, null);
                o.addProperty("ctx", context);
                o.addProperty("model", m.path().toString());
                o.addProperty("device", backend.name());
                if (lora != null) o.addProperty("lora", loraOptions.lora.toString());
                o.addProperty("seconds", seconds);
                o.add("files", perFile);
                if (routingOptions.active()) addRouting(o, stats);
                System.out.println(new GsonBuilder().disableHtmlEscaping().create().toJson(o));
            } else {
                System.out.printf("ppl %.4f  (mean nll %.5f over %d tokens, %d documents, ctx %d, %.1f s)%n",
                        total.ppl(), total.meanNll(), total.tokens(), total.documents(), context, seconds);
                if (routingOptions.active()) {
                    System.out.printf("routing: module sparsity %.4f, param sparsity %.4f, FLOP saving %.4f%n",
                            stats.moduleSparsity(), stats.paramSparsity(), stats.flopSaving());
                    System.out.printf("  attn keep %s%n  mlp keep  %s%n", Comparison.numbers(stats.attnKeep(), 3),
                            Comparison.numbers(stats.mlpKeep(), 3));
                }
            }
        }
        return 0;
    }

    /** Routing figures over every position fed through the model (BOS included). */
    static void addRouting(JsonObject o, RoutingStats stats) {
        o.addProperty("module_sparsity", stats.moduleSparsity());
        JsonArray attn = new JsonArray(), mlp = new JsonArray();
        for (double r : stats.attnKeep()) attn.add(r);
        for (double r : stats.mlpKeep()) mlp.add(r);
        o.add("attn_keep", attn);
        o.add("mlp_keep", mlp);
        o.addProperty("param_sparsity", stats.paramSparsity());
        o.addProperty("flop_saving", stats.flopSaving());
        o.addProperty("routed_positions", stats.tokens());
    }

    private static JsonObject figures(Perplexity.Result r, String file) {
        JsonObject o = new JsonObject();
        if (file != null) o.addProperty("file", file);
        o.addProperty("ppl", r.ppl());
        o.addProperty("nll", r.meanNll());
        o.addProperty("tokens", r.tokens());
        o.addProperty("documents", r.documents());
        return o;
    }
}
