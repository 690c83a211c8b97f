package io.skipgpt.cli;

import io.skipgpt.io.LoadedModel;
import io.skipgpt.lora.LoraConfig;
import io.skipgpt.model.Projection;
import io.skipgpt.routing.RouterFile;
import io.skipgpt.routing.Routers;
import io.skipgpt.tensor.Backend;
import io.skipgpt.train.HeldOut;
import io.skipgpt.train.LoraTrainer;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "train-lora", mixinStandardHelpOptions = true,
        description = {"Stage 2 of SkipGPT: train a LoRA adapter with the base model and the routers frozen.",
                "Gates are hard-sampled at tau = 1 as in training (or --gates deterministic), the loss is",
                "cross-entropy, AdamW with a cosine schedule after a warm-up. Without --routers the adapter trains on",
                "the dense model. Writes DIR as a PEFT adapter directory (adapter_config.json,",
                "adapter_model.safetensors), with a JSONL log (DIR/train.jsonl) and atomic checkpoints (DIR/checkpoints)."},
        footer = {"", "Example (a minute or two on 2 cores with OPENBLAS_NUM_THREADS=1):",
                "  skipgpt train-lora --model ../shared/data/models/stories260K/stories260K.gguf \\",
                "      --routers runs/r25/routers.safetensors --data ../shared/data/text/tinystories_valid_part2.txt \\",
                "      --steps 100 --lr 2e-3 --out runs/r25-lora",
                "Then: skipgpt eval --model ... --ppl ../shared/data/text/tinystories_valid_head.txt \\",
                "      --routers runs/r25/routers.safetensors --lora runs/r25-lora"})
final class TrainLoraCommand implements Callable<Integer> {
    @Mixin
    ModelOptions options;

    @Option(names = "--routers", paramLabel = "FILE", description = "Routers from stage 1 (frozen). Without: the dense model.")
    Path routers;

    @Mixin
    DataOptions data;

    @Mixin
    TrainingOptions training;

    @Option(names = "--steps", required = true, paramLabel = "N", description = "Optimizer steps.")
    int steps;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory (the adapter).")
    Path out;

    @Mixin
    LoraShape shape;

    @Option(names = "--gates", defaultValue = "sample", paramLabel = "MODE",
            description = "sample (Gumbel at tau = 1, as in training) or deterministic (as inference) (default: ${DEFAULT-VALUE}).")
    String gates;

    @Option(names = "--lr", defaultValue = "2e-4", paramLabel = "LR", description = "Peak learning rate (default: ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--schedule", defaultValue = "cosine", paramLabel = "S", description = "constant or cosine (default: ${DEFAULT-VALUE}).")
    String schedule;

    @Option(names = "--warmup", paramLabel = "N", description = "Warm-up steps (default: a tenth of --steps).")
    Integer warmup;

    @Option(names = "--weight-decay", defaultValue = "0", paramLabel = "W", description = "AdamW weight decay (default: ${DEFAULT-VALUE}).")
    double weightDecay;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "Seed of A, data order, gate noise and dropout (default: ${DEFAULT-VALUE}).")
    long seed;

    /** The adapter's shape options, shared with prune; the defaults are SkipGPT's ({@link LoraConfig#DEFAULT}). */
    static final class LoraShape {
        @Option(names = "--rank", paramLabel = "R", description = "LoRA rank (default: ${DEFAULT-VALUE}).")
        int rank = LoraConfig.DEFAULT.rank();

        @Option(names = "--alpha", paramLabel = "A", description = "LoRA alpha; the term is scaled by alpha / rank (default: ${DEFAULT-VALUE}).")
        double alpha = LoraConfig.DEFAULT.alpha();

        @Option(names = "--dropout", paramLabel = "P", description = "Dropout on the adapter's input in training (default: ${DEFAULT-VALUE}).")
        double dropout = LoraConfig.DEFAULT.dropout();

        @Option(names = "--targets", paramLabel = "LIST",
                description = "Adapted projections among q, k, v, o, gate, up, down (default: ${DEFAULT-VALUE}).")
        String targets = LoraConfig.DEFAULT.targetList();

        LoraConfig config() {
            return new LoraConfig(Projection.parseList(targets), rank, alpha, dropout);
        }
    }

    static LoraTrainer.Gates gates(String mode) {
        return switch (mode.toLowerCase(Locale.ROOT)) {
            case "sample" -> LoraTrainer.Gates.SAMPLE;
            case "deterministic" -> LoraTrainer.Gates.DETERMINISTIC;
            default -> throw new IllegalArgumentException("--gates must be sample or deterministic, got '" + mode + "'");
        };
    }

    @Override
    public Integer call() throws Exception {
        LoraTrainer.Options o = new LoraTrainer.Options(shape.config(), gates(gates), training.optimization(steps, data.batch, lr, schedule, warmup != null ? warmup : steps / 10, weightDecay, seed));
        try (LoadedModel m = options.load(); Backend backend = options.backend();
                Routers r = routers == null ? null : RouterFile.read(routers, m.config().nLayers(), m.config().dim())) {
            LoraTrainer trainer = new LoraTrainer(m.config(), m.weights(), backend, data.load(m.tokenizer(), seed), r, o, out,
                    m.path().toString(), System.err);
            HeldOut e = trainer.run(training.resume);
            System.out.printf("held-out ppl %.4f, realised sparsity %.4f%n", e.ppl(), e.moduleSparsity());
        }
        return 0;
    }
}
