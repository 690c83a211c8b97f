package io.skipgpt.eval;

import io.skipgpt.model.LlamaModel;
import io.skipgpt.routing.Routing;
import io.skipgpt.routing.StaticSkip;
import io.skipgpt.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Finds a static skip set of k modules on calibration text, the baseline a router must beat at the same sparsity
 * (choose it on calibration text, report it on held-out text), by one of two methods:
 * <ul>
 *   <li>{@link #best}: the lowest perplexity, exhaustively when there are at most {@code exhaustiveLimit} subsets,
 *       otherwise greedily (add the module whose removal hurts least, k times);</li>
 *   <li>{@link #byCosine}: an importance score, ShortGPT-style per module ({@link ModuleSimilarity}): skip the k
 *       modules whose output residual is most similar to their input — one dense pass, whatever the model's size.</li>
 * </ul>
 */
public final class StaticSkipSearch {
    /** A skip set as a --skip spec, with its calibration perplexity. */
    public record Candidate(String spec, double ppl) {}

    private final LlamaModel model;
    private final Tokenizer tokenizer;
    private final List<int[]> calibrationIds; // the calibration text's documents, encoded once for every candidate
    private final int context;

    public StaticSkipSearch(LlamaModel model, Tokenizer tokenizer, String calibration, int context) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.calibrationIds = Perplexity.encode(tokenizer, calibration);
        this.context = context;
    }

    /** Module i < L is attention of layer i, i >= L the MLP of layer i − L. */
    static String spec(List<Integer> modules, int layers) {
        List<String> parts = new ArrayList<>();
        for (int m : modules) parts.add(m < layers ? "attn:" + m : "mlp:" + (m - layers));
        return String.join(",", parts);
    }

    public Candidate best(int k, int exhaustiveLimit, Consumer<Candidate> progress) {
        int layers = model.config().nLayers(), modules = 2 * layers;
        if (k < 0 || k > modules) throw new IllegalArgumentException("cannot skip " + k + " of " + modules + " modules");
        if (binomial(modules, k) <= exhaustiveLimit) {
            Candidate[] best = {null};
            subsets(modules, k, 0, new ArrayList<>(), s -> {
                Candidate c = score(s, layers);
                if (progress != null) progress.accept(c);
                if (best[0] == null || c.ppl() < best[0].ppl()) best[0] = c;
            });
            return best[0];
        }
        List<Integer> chosen = new ArrayList<>();
        Candidate best = score(chosen, layers);
        for (int step = 0; step < k; step++) {
            Candidate round = null;
            int pick = -1;
            for (int m = 0; m < modules; m++) {
                if (chosen.contains(m)) continue;
                List<Integer> trial = new ArrayList<>(chosen);
                trial.add(m);
                Candidate c = score(trial, layers);
                if (progress != null) progress.accept(c);
                if (round == null || c.ppl() < round.ppl()) {
                    round = c;
                    pick = m;
                }
            }
            chosen.add(pick);
            best = round;
        }
        return best;
    }

    /** The k modules with the highest mean input/output cosine similarity, with the calibration perplexity of skipping them. */
    public Candidate byCosine(int k, ModuleSimilarity.Scores scores) {
        int layers = model.config().nLayers(), modules = 2 * layers;
        if (k < 0 || k > modules) throw new IllegalArgumentException("cannot skip " + k + " of " + modules + " modules");
        List<Integer> order = new ArrayList<>();
        for (int m = 0; m < modules; m++) order.add(m);
        order.sort((a, b) -> Double.compare(cosine(scores, b, layers), cosine(scores, a, layers)));
        List<Integer> chosen = new ArrayList<>(order.subList(0, k));
        chosen.sort(null);
        return score(chosen, layers);
    }

    /** Mean input/output similarity of calibration text for every module. */
    public ModuleSimilarity.Scores similarity() {
        return new ModuleSimilarity(model).score(calibrationIds, context);
    }

    private static double cosine(ModuleSimilarity.Scores s, int module, int layers) {
        return module < layers ? s.attn()[module] : s.mlp()[module - layers];
    }

    private Candidate score(List<Integer> modules, int layers) {
        String spec = spec(modules, layers);
        Routing routing = Routing.routed(StaticSkip.parse(spec, layers), null);
        double ppl = new Perplexity(model, tokenizer, context, routing).score(calibrationIds, null).ppl();
        return new Candidate(spec, ppl);
    }

    private static void subsets(int n, int k, int from, List<Integer> prefix, Consumer<List<Integer>> visit) {
        if (prefix.size() == k) {
            visit.accept(List.copyOf(prefix));
            return;
        }
        for (int m = from; m <= n - (k - prefix.size()); m++) {
            prefix.add(m);
            subsets(n, k, m + 1, prefix, visit);
            prefix.remove(prefix.size() - 1);
        }
    }

    static long binomial(int n, int k) {
        long r = 1;
        for (int i = 1; i <= k; i++) r = r * (n - k + i) / i;
        return r;
    }
}
