package io.skipgpt.eval;

import io.skipgpt.model.KvCache;
import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.Gate;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.RoutingStats;
import io.skipgpt.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * Prefill and decode speed, llama-bench style, dense and routed on the same weights in the same run:
 * {@code pp N} processes an N-token prompt from an empty cache in one forward pass; {@code tg N} generates N
 * tokens one pass at a time from an empty cache; batched {@code tg N x B @ C} continues B sequences, each with a
 * C-token context already in its cache, by N tokens each, one pass per step carrying all B sequences (what a
 * server's decode looks like). Each variant runs {@code warmup} untimed and {@code reps} timed
 * repetitions, interleaved (repetition i of every variant, then repetition i + 1) so that a change in the
 * machine's load hits all variants alike; figures are tokens per second, median and range.
 *
 * <p>Every timed pass counts its routing decisions, so each routed figure comes with the FLOP bound of the skip
 * pattern it realised: {@link RoutingStats#flopBound()} over the decoder layers, and the same bound for the whole
 * forward pass, which adds the output head's FLOPs (never skipped) to both sides — what a routed decode, where
 * the head is a large share of the work, can at best reach.
 */
public final class Bench {
    /**
     * One phase's speed over the timed repetitions: tokens per second (median, min, max); the median share of the
     * machine's cores the process used while timed (CPU seconds / (wall seconds x cores available): well below 1
     * when other work competed); and the median tokens per CPU second of the process, a figure that time-sharing
     * with other work disturbs less than wall time does (NaN where the CPU time is unknown, or a repetition takes
     * under 0.1 s: too short for the 10 ms CPU clock).
     */
    public record Figures(String phase, int tokens, int batch, int context, double median, double min, double max,
                          int reps, double cpuShare, double perCpuSecond) {
        public String label() {
            return phase + tokens + (batch == 1 && context == 0 ? "" : " x" + batch + " @" + context);
        }
    }

    /** A way to route: each repetition gets a fresh gate, so that a seeded random gate decides the same every time. */
    public record Variant(String label, Supplier<Gate> gate) {
        public static final Variant DENSE = new Variant("dense", () -> Gate.DENSE);
    }

    /** A variant's figures in one phase, with the decisions of its timed passes and the whole-pass FLOP bound. */
    public record Result(Variant variant, Figures figures, RoutingStats stats, double modelBound) {}

    private final LlamaModel model;
    private final SplittableRandom random;

    public Bench(LlamaModel model, long seed) {
        this.model = model;
        this.random = new SplittableRandom(seed);
    }

    public List<Result> prefill(List<Variant> variants, int tokens, int warmup, int reps) {
        int[] prompt = randomTokens(tokens);
        try (KvCache cache = model.newCache(tokens); Tensor logits = Tensor.f32(1, model.config().vocabSize())) {
            return measure("pp", tokens, 1, 0, variants, warmup, reps, routing -> {
                cache.clear();
                model.forward(prompt, cache, logits, routing);
            }, 1);
        }
    }

    public List<Result> decode(List<Variant> variants, int tokens, int warmup, int reps) {
        int[] ids = randomTokens(tokens);
        try (KvCache cache = model.newCache(tokens); Tensor logits = Tensor.f32(1, model.config().vocabSize())) {
            return measure("tg", tokens, 1, 0, variants, warmup, reps, routing -> {
                cache.clear();
                for (int id : ids) model.forward(new int[] {id}, cache, logits, routing);
            }, tokens);
        }
    }

    /**
     * Batched decode: {@code batch} sequences, each given a random {@code context}-token prompt once (dense, in
     * one untimed pass), then per repetition cut back to that prompt and continued by {@code steps} tokens, each
     * step one pass over all sequences. Routing applies to the timed steps; the prompts' keys and values are the
     * dense ones, which changes no cost.
     */
    public List<Result> decodeBatch(List<Variant> variants, int steps, int batch, int context, int warmup, int reps) {
        if (batch <= 0 || context < 0) throw new IllegalArgumentException("bench: batch must be positive, context >= 0");
        // One group of caches, as a server holds them: each step appends and attends in one op per layer.
        List<KvCache> caches = model.newCaches(batch, context + steps);
        try (Tensor logits = Tensor.f32(batch, model.config().vocabSize())) {
            List<LlamaModel.Chunk> prompts = new ArrayList<>();
            for (int b = 0; b < batch; b++) {
                if (context > 0) prompts.add(new LlamaModel.Chunk(randomTokens(context), caches.get(b), 0));
            }
            if (context > 0) model.forward(prompts, null, Routing.DENSE);
            int[][] ids = new int[steps][];
            for (int s = 0; s < steps; s++) ids[s] = randomTokens(batch);
            return measure("tg", steps, batch, context, variants, warmup, reps, routing -> {
                for (KvCache cache : caches) cache.truncate(context);
                for (int[] step : ids) {
                    List<LlamaModel.Chunk> chunks = new ArrayList<>(batch);
                    for (int b = 0; b < batch; b++) chunks.add(new LlamaModel.Chunk(new int[] {step[b]}, caches.get(b)));
                    model.forward(chunks, logits, routing);
                }
            }, batch * steps);
        } finally {
            caches.forEach(KvCache::close);
        }
    }

    private interface Pass {
        void run(Routing routing);
    }

    // One run processes tokens x batch rows (batch sequences of `tokens` tokens each, after `context` cached ones);
    // headRows: rows that get logits in one run.
    private List<Result> measure(String phase, int tokens, int batch, int context, List<Variant> variants, int warmup,
                                 int reps, Pass pass, int headRows) {
        if (tokens <= 0 || reps <= 0 || warmup < 0) {
            throw new IllegalArgumentException("bench: tokens and repetitions must be positive, warm-up >= 0");
        }
        int v = variants.size();
        for (int i = 0; i < warmup; i++) {
            for (Variant variant : variants) pass.run(Routing.routed(variant.gate().get(), null));
        }
        double[][] rates = new double[v][reps], shares = new double[v][reps], cpuRates = new double[v][reps];
        int cores = Runtime.getRuntime().availableProcessors();
        RoutingStats[] stats = new RoutingStats[v];
        for (int k = 0; k < v; k++) stats[k] = new RoutingStats(model.config());
        for (int i = 0; i < reps; i++) {
            for (int k = 0; k < v; k++) {
                Routing routing = Routing.routed(variants.get(k).gate().get(), stats[k]);
                double cpu0 = ProcessCpu.seconds();
                long t0 = System.nanoTime();
                pass.run(routing);
                long ns = System.nanoTime() - t0;
                rates[k][i] = (double) tokens * batch * 1e9 / ns;
                // the CPU clock ticks every 10 ms: a shorter repetition has no meaningful CPU figures
                double cpu = ns < 100_000_000L ? Double.NaN : ProcessCpu.seconds() - cpu0;
                shares[k][i] = cpu / (ns / 1e9 * cores);
                cpuRates[k][i] = (double) tokens * batch / cpu;
            }
        }
        // the output head, never skipped, over all timed runs, beside the decoder layers' FLOPs the stats counted
        double head = 2.0 * model.config().dim() * model.config().vocabSize() * headRows * reps;
        List<Result> results = new ArrayList<>();
        for (int k = 0; k < v; k++) {
            double[] r = rates[k];
            Arrays.sort(r);
            double modelBound = (stats[k].denseFlops() + head) / (stats[k].executedFlops() + head);
            results.add(new Result(variants.get(k), new Figures(phase, tokens, batch, context, median(r), r[0],
                    r[reps - 1], reps, median(shares[k]), median(cpuRates[k])), stats[k], modelBound));
        }
        return results;
    }

    private static double median(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }

    private int[] randomTokens(int n) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = random.nextInt(model.config().vocabSize());
        return ids;
    }
}
