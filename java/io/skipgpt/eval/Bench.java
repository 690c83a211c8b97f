package io.skipgpt.eval;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.tensor.Tensor;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Prefill and decode speed, llama-bench style: {@code pp N} processes an N-token prompt from an empty cache in
 * one forward pass; {@code tg N} generates N tokens one pass at a time from an empty cache. Each runs
 * {@code warmup} untimed and {@code reps} timed repetitions; figures are tokens per second.
 */
public final class Bench {
    /** One phase's figures over the timed repetitions. */
    public record Figures(String phase, int tokens, double median, double min, double max, int reps) {
        public String label() {
            return phase + tokens;
        }
    }

    private final LlamaModel model;
    private final SplittableRandom random;

    public Bench(LlamaModel model, long seed) {
        this.model = model;
        this.random = new SplittableRandom(seed);
    }

    public Figures prefill(int tokens, int warmup, int reps) {
        int[] prompt = randomTokens(tokens);
        try (KvCache cache = model.newCache(tokens); Tensor logits = Tensor.f32(1, model.config().vocabSize())) {
            return measure("pp", tokens, warmup, reps, () -> {
                cache.clear();
                model.forward(prompt, cache, logits);
            });
        }
    }

    public Figures decode(int tokens, int warmup, int reps) {
        int[] ids = randomTokens(tokens);
        try (KvCache cache = model.newCache(tokens); Tensor logits = Tensor.f32(1, model.config().vocabSize())) {
            return measure("tg", tokens, warmup, reps, () -> {
                cache.clear();
                for (int id : ids) model.forward(new int[] {id}, cache, logits);
            });
        }
    }

    private Figures measure(String phase, int tokens, int warmup, int reps, Runnable run) {
        if (tokens <= 0 || reps <= 0 || warmup < 0) {
            throw new IllegalArgumentException("bench: tokens and repetitions must be positive, warm-up >= 0");
        }
        for (int i = 0; i < warmup; i++) run.run();
        double[] rates = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            run.run();
            rates[i] = tokens * 1e9 / (System.nanoTime() - t0);
        }
        Arrays.sort(rates);
        double median = reps % 2 == 1 ? rates[reps / 2] : (rates[reps / 2 - 1] + rates[reps / 2]) / 2;
        return new Figures(phase, tokens, median, rates[0], rates[reps - 1], reps);
    }

    private int[] randomTokens(int n) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = random.nextInt(model.config().vocabSize());
        return ids;
    }
}
