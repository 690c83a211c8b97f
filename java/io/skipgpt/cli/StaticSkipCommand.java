package io.skipgpt.cli;

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
        description = {"Find the best static skip set (the same modules skipped for every token) at a sparsity:",
                "the k = round(T x 2 x layers) modules whose removal costs the least perplexity on calibration text",
                "(exhaustive search when small enough, else greedy). Prints a --skip list for eval and generate."},
        footer = {"", "Example:",
                "  skipgpt static-skip --model ../shared/data/models/stories260K/stories260K.gguf \\",
                "      --calib ../shared/data/text/tinystories_valid_part2.txt --calib-chars 40000 --sparsity 0.4"})
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

    @Option(names = "--exhaustive-limit", defaultValue = "500", paramLabel = "N",
            description = "Search all subsets when there are at most N of them (default: ${DEFAULT-VALUE}).")
    int exhaustiveLimit;

    @Override
    public Integer call() throws Exception {
        if (!(sparsity >= 0 && sparsity < 1)) throw new IllegalArgumentException("--sparsity must be in [0, 1)");
        String text = Files.readString(calib, StandardCharsets.UTF_8);
        text = text.substring(0, Math.min(text.length(), calibChars));
        try (LoadedModel m = options.load(); Backend backend = options.backend();
                LlamaModel model = ModelOptions.model(m, backend)) {
            int modules = 2 * m.config().nLayers();
            int k = (int) Math.round(sparsity * modules);
            System.err.printf("searching %d of %d modules to skip (sparsity %.3f) on %d characters of %s%n", k, modules,
                    (double) k / modules, text.length(), calib);
            Progress progress = new Progress("candidates tried:", "");
            int[] tried = {0};
            StaticSkipSearch.Candidate best = new StaticSkipSearch(model, m.tokenizer(), text,
                    ctx != null ? ctx : m.config().contextLength()).best(k, exhaustiveLimit, c -> progress.update(++tried[0]));
            System.out.printf("--skip %s   (calibration ppl %.4f, module sparsity %.3f)%n", best.spec(), best.ppl(),
                    (double) k / modules);
        }
        return 0;
    }
}
