package io.skipgpt.cli;

import io.skipgpt.eval.Comparison;
import io.skipgpt.eval.ModuleSimilarity;
import io.skipgpt.eval.StaticSkipSearch;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.tensor.Backend;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "static-skip", mixinStandardHelpOptions = true,
        description = {"Find a static skip set (the same modules skipped for every token) of k = round(T x 2 x layers)",
                "modules on calibration text. --method ppl: the set whose removal costs the least perplexity",
                "(exhaustive search when small enough, else greedy). --method cosine: ShortGPT-style importance per",
                "module, the k modules whose output residual is most similar (mean cosine over tokens) to their input.",
                "Prints a --skip list for eval and generate."},
        footer = {"", "Example:",
                "  skipgpt static-skip --model ../shared/data/models/stories260K/stories260K.gguf \\",
                "      --calib ../shared/data/text/tinystories_valid_part2.txt --calib-chars 40000 --sparsity 0.4",
                "  skipgpt static-skip --model M --calib FILE --sparsity 0.25 --method cosine"})
final class StaticSkipCommand implements Callable<Integer> {
    @Mixin
    ModelOptions options;

    @Option(names = "--calib", required = true, paramLabel = "FILE", description = "Calibration text (not your test text).")
    Path calib;

    @Option(names = "--calib-chars", defaultValue = "40000", paramLabel = "N",
            description = "Use the first N characters of the calibration text (default: ${DEFAULT-VALUE}).")
    int calibChars;

    @Option(names = "--sparsity", required = true, paramLabel = "T", description = "Target fraction of skipped modules.")
    double sparsity;

    @Option(names = "--ctx", paramLabel = "C", description = "Context window (default: the model's).")
    Integer ctx;

    @Option(names = "--method", defaultValue = "ppl", paramLabel = "M",
            description = "ppl (search by calibration perplexity) or cosine (importance score). Default: ${DEFAULT-VALUE}.")
    String method;

    @Option(names = "--exhaustive-limit", defaultValue = "500", paramLabel = "N",
            description = "Search all subsets when there are at most N of them (default: ${DEFAULT-VALUE}).")
    int exhaustiveLimit;

    @Override
    public Integer call() throws Exception {
        if (!(sparsity >= 0 && sparsity < 1)) throw new IllegalArgumentException("--sparsity must be in [0, 1)");
        boolean cosine = switch (method) {
            case "ppl" -> false;
            case "cosine" -> true;
            default -> throw new IllegalArgumentException("--method must be ppl or cosine, got '" + method + "'");
        };
        String text = Files.readString(calib, StandardCharsets.UTF_8);
        text = text.substring(0, Math.min(text.length(), calibChars));
        try (LoadedModel m = options.load(); Backend backend = options.backend();
                LlamaModel model = ModelOptions.model(m, backend)) {
            int modules = 2 * m.config().nLayers();
            int k = (int) Math.round(sparsity * modules);
            int context = ctx != null ? ctx : m.config().contextLength();
            StaticSkipSearch search = new StaticSkipSearch(model, m.tokenizer(), text, context);
            StaticSkipSearch.Candidate best;
            if (cosine) {
                ModuleSimilarity.Scores scores = search.similarity();
                System.err.printf("mean cos(input, output) over %d tokens of %s%n  attn %s%n  mlp  %s%n", scores.tokens(),
                        calib, Comparison.numbers(scores.attn(), 4),
                        Comparison.numbers(scores.mlp(), 4));
                best = search.byCosine(k, scores);
            } else {
                System.err.printf("searching %d of %d modules to skip (sparsity %.3f) on %d characters of %s%n", k,
                        modules, (double) k / modules, text.length(), calib);
                Progress progress = new Progress("candidates tried:", "");
                int[] tried = {0};
                best = search.best(k, exhaustiveLimit, c -> progress.update(++tried[0]));
            }
            System.out.printf("--skip %s   (calibration ppl %.4f, module sparsity %.3f)%n", best.spec(), best.ppl(),
                    (double) k / modules);
        }
        return 0;
    }

}
