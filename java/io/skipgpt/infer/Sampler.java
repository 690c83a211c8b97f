package io.skipgpt.infer;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from a row of logits: greedy (temperature 0), or a draw from
 * softmax(logits / temperature) restricted to the smallest set of tokens whose probability reaches topP.
 * Seeded: the same seed and logits give the same tokens.
 */
public final class Sampler {
    private final float temperature;
    private final float topP;
    private final SplittableRandom random;
    private double[] p = new double[0]; // exp((logit - max) / temperature), reused from token to token

    public Sampler(float temperature, float topP, long seed) {
        if (!(temperature >= 0f) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        }
        if (!(topP > 0f && topP <= 1f)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        this.temperature = temperature;
        this.topP = topP;
        this.random = new SplittableRandom(seed);
    }

    public static Sampler greedy() {
        return new Sampler(0f, 1f, 0);
    }

    public int sample(float[] logits) {
        if (temperature == 0f) return argmax(logits);
        int v = logits.length;
        float max = logits[argmax(logits)];
        if (p.length != v) p = new double[v];
        double sum = 0;
        for (int i = 0; i < v; i++) {
            p[i] = Math.exp((logits[i] - max) / temperature);
            sum += p[i];
        }
        if (topP == 1f) return draw(sum, v);
        Integer[] order = new Integer[v];
        for (int i = 0; i < v; i++) order[i] = i;
        double[] prob = p;
        Arrays.sort(order, (a, b) -> Double.compare(prob[b], prob[a]));
        // Nucleus: the most probable tokens until their mass reaches topP.
        double mass = 0;
        int keep = v;
        for (int i = 0; i < v; i++) {
            mass += p[order[i]] / sum;
            if (mass >= topP) {
                keep = i + 1;
                break;
            }
        }
        double kept = 0;
        for (int i = 0; i < keep; i++) kept += p[order[i]];
        double r = random.nextDouble() * kept;
        for (int i = 0; i < keep; i++) {
            r -= p[order[i]];
            if (r < 0) return order[i];
        }
        return order[keep - 1];
    }

    // A draw from every token in index order (topP = 1): the nucleus draw below with the identity order, no sort.
    private int draw(double sum, int v) {
        double r = random.nextDouble() * sum;
        for (int i = 0; i < v; i++) {
            r -= p[i];
            if (r < 0) return i;
        }
        return v - 1;
    }

    static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
