package io.skipgpt.model;

import io.skipgpt.tensor.Tensor;
import java.nio.FloatBuffer;
import java.util.SplittableRandom;

/**
 * Seeded random weights for a config: benchmarks of real architectures at fewer layers, and tests that build
 * their own small model. Linear weights are uniform with the variance of a Kaiming init (so activations stay
 * O(1) through many layers); norm weights are 1 plus a little noise, so a wrong norm weight shows.
 */
public final class RandomWeights {
    private RandomWeights() {}

    public static LlamaWeights create(LlamaConfig config, long seed) {
        LlamaWeights w = LlamaWeights.allocate(config);
        SplittableRandom rng = new SplittableRandom(seed);
        fill(w.tokenEmbedding(), 1.0f, 0f, rng);
        for (LlamaWeights.Layer l : w.layers()) {
            fill(l.attnNorm(), 0.1f, 1f, rng);
            fill(l.ffnNorm(), 0.1f, 1f, rng);
            for (Tensor t : new Tensor[] {l.wq(), l.wk(), l.wv(), l.wo(), l.wGate(), l.wUp(), l.wDown()}) {
                fill(t, (float) Math.sqrt(3.0 / t.cols()), 0f, rng);
            }
        }
        fill(w.outputNorm(), 0.1f, 1f, rng);
        if (!w.tied()) fill(w.output(), (float) Math.sqrt(3.0 / config.dim()), 0f, rng);
        return w;
    }

    // t = offset + uniform(-scale, scale); a fast xorshift stream seeded per tensor keeps billions of floats quick.
    private static void fill(Tensor t, float scale, float offset, SplittableRandom rng) {
        FloatBuffer b = t.floats();
        long s = rng.nextLong() | 1L;
        long n = t.size();
        for (long i = 0; i < n; i++) {
            s ^= s << 13;
            s ^= s >>> 7;
            s ^= s << 17;
            float u = (s >>> 40) * 0x1.0p-24f * 2f - 1f;
            b.put((int) i, offset + scale * u);
        }
    }
}
