package io.skipgpt.cli;

import io.skipgpt.train.Optimization;
import picocli.CommandLine.Option;

/**
 * The optimisation options both training stages share with the same meaning and defaults: accumulation,
 * clipping, how often to evaluate and checkpoint, and resuming. Learning rate, schedule, warm-up, weight decay and
 * seed stay with each command: their defaults (and what the seed draws) differ.
 */
final class TrainingOptions {
    @Option(names = "--accum", defaultValue = "1", paramLabel = "K", description = "Micro-batches per optimizer step (default: ${DEFAULT-VALUE}).")
    int accum;

    @Option(names = "--clip", defaultValue = "1.0", paramLabel = "C", description = "Gradient-norm clipping (default: ${DEFAULT-VALUE}).")
    double clip;

    @Option(names = "--eval-every", defaultValue = "25", paramLabel = "N", description = "Held-out evaluation every N steps, 0 = only at the end (default: ${DEFAULT-VALUE}).")
    int evalEvery;

    @Option(names = "--checkpoint-every", defaultValue = "50", paramLabel = "N", description = "Checkpoint every N steps (default: ${DEFAULT-VALUE}; always at the end).")
    int checkpointEvery;

    @Option(names = "--resume", description = "Continue from the latest checkpoint in DIR (same settings), to the same result as an uninterrupted run.")
    boolean resume;

    /** The run's optimisation settings, with this command's own learning-rate schedule and seed. */
    Optimization optimization(int steps, int batch, double lr, String schedule, int warmup, double weightDecay, long seed) {
        return new Optimization(steps, batch, accum, lr, schedule, warmup, weightDecay, clip, seed, evalEvery, checkpointEvery);
    }
}
