package io.skipgpt.eval;

import io.skipgpt.routing.Gate;
import io.skipgpt.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * Forced random routing for speed measurements on random weights: every module of every token runs with
 * probability 1 − T, independently, from a seed (the same seed gives the same decisions).
 */
public final class RandomGate implements Gate {
    private final double sparsity;
    private final SplittableRandom random;

    public RandomGate(double sparsity, long seed) {
        if (!(sparsity >= 0 && sparsity <= 1)) throw new IllegalArgumentException("sparsity must be in [0, 1], got " + sparsity);
        this.sparsity = sparsity;
        this.random = new SplittableRandom(seed);
    }

    @Override
    public void decide(int layer, Tensor x, boolean[] keepAttn, boolean[] keepMlp) {
        for (int i = 0; i < x.rows(); i++) {
            keepAttn[i] = random.nextDouble() >= sparsity;
            keepMlp[i] = random.nextDouble() >= sparsity;
        }
    }

    @Override
    public String toString() {
        return "random " + sparsity;
    }
}
