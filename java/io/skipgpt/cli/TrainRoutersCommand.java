package io.skipgpt.cli;

import io.skipgpt.eval.Comparison;
import io.skipgpt.io.LoadedModel;
import io.skipgpt.tensor.Backend;
import io.skipgpt.train.HeldOut;
import io.skipgpt.train.RouterTrainer;
import io.skipgpt.train.TokenDataset;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "train-routers", mixinStandardHelpOptions = true,
        description = {"Stage 1 of SkipGPT: train the routers against a global sparsity target, base model frozen.",
                "Loss CE + alpha*|(1-T) - r| (r: mean execute gate over tokens, layers and both module kinds), hard",
                "Gumbel gates with straight-through gradients, tau annealed 5 -> 1, AdamW. One progress line per step,",
                "a JSONL log (DIR/train.jsonl), atomic checkpoints (DIR/checkpoints), and DIR/routers.safetensors."},
        footer = {"", "Example (about a minute on 2 cores):",
                "  skipgpt train-routers --model ../shared/data/models/stories260K/stories260K.gguf \\",
                "      --data ../shared/data/text/tinystories_valid_part2.txt --sparsity 0.25 --steps 100 --out runs/r25",
                "Then: skipgpt eval --model ... --ppl ../shared/data/text/tinystories_valid_head.txt --routers runs/r25/routers.safetensors"})
final class TrainRoutersCommand implements Callable<Integer> {
    @Mixin
    ModelOptions options;

    @Mixin
    DataOptions data;

    @Mixin
    TrainingOptions training;

    @Option(names = "--sparsity", required = true, paramLabel = "T", description = "Target fraction of skipped modules, e.g. 0.25.")
    double sparsity;

    @Option(names = "--steps", required = true, paramLabel = "N", description = "Optimizer steps.")
    int steps;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Option(names = "--lr", defaultValue = "2e-3", paramLabel = "LR", description = "Peak learning rate (default: ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--schedule", defaultValue = "constant", paramLabel = "S", description = "constant or cosine (with --warmup) (default: ${DEFAULT-VALUE}).")
    String schedule;

    @Option(names = "--warmup", defaultValue = "0", paramLabel = "N", description = "Warm-up steps of the cosine schedule (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--alpha", defaultValue = "8", paramLabel = "A", description = "Weight of the sparsity penalty (default: ${DEFAULT-VALUE}, the paper's).")
    double alpha;

    @Option(names = "--weight-decay", defaultValue = "0.01", paramLabel = "W", description = "AdamW weight decay (default: ${DEFAULT-VALUE}).")
    double weightDecay;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "Seed of routers, data order and Gumbel noise (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--calibrate", description = {"After training, shift the execute threshold so that deterministic "
            + "routing realises the target sparsity on training sequences (it otherwise rounds the sampled "
            + "probabilities and usually skips less). The routers as trained are kept in "
            + "DIR/routers-uncalibrated.safetensors."})
    boolean calibrate;

    @Override
    public Integer call() throws Exception {
        RouterTrainer.Options o = new RouterTrainer.Options(sparsity, alpha, calibrate, training.optimization(steps, data.batch, lr, schedule, warmup, weightDecay, seed));
        try (LoadedModel m = options.load(); Backend backend = options.backend()) {
            TokenDataset dataset = data.load(m.tokenizer(), seed);
            RouterTrainer trainer = new RouterTrainer(m.config(), m.weights(), backend, dataset, o, out, System.err);
            HeldOut e = trainer.run(training.resume);
            System.out.printf("held-out ppl %.4f, realised sparsity %.4f (target %.4f)%n  attn keep %s%n  mlp keep  %s%n",
                    e.ppl(), e.moduleSparsity(), sparsity, Comparison.numbers(e.attnKeep(), 3),
                    Comparison.numbers(e.mlpKeep(), 3));
        }
        return 0;
    }
}
