package io.skipgpt.train;

/**
 * A small reproducible generator (SplitMix64) whose whole state is one long, so a checkpoint can store it and a
 * resumed run continue the exact same stream ({@link java.util.SplittableRandom} cannot export its state).
 * {@code new Rng(rng.state())} continues where {@code rng} stands. Not thread-safe: one generator per consumer.
 */
public final class Rng {
    private static final long GAMMA = 0x9E3779B97F4A7C15L;

    private long state;

    /** A generator whose state is {@code seed}; any long, 0 included, is a good seed. */
    public Rng(long seed) {
        this.state = seed;
    }

    /**
     * An independent stream for {@code (seed, key)}, e.g. the shuffle of epoch {@code key}. Seeding with
     * {@code seed + key} would not do: SplitMix64 streams whose seeds differ by a multiple of its increment are
     * shifted copies of each other, so both parts go through the finaliser first.
     */
    public static Rng derived(long seed, long key) {
        return new Rng(mix(seed) ^ mix(key * GAMMA + 0x632BE59BD9B4E019L));
    }

    /** The state to save: {@code new Rng(state())} produces the same numbers as this generator from here on. */
    public long state() {
        return state;
    }

    public long nextLong() {
        state += GAMMA;
        return mix(state);
    }

    /** Uniform in {@code [0, bound)}, without modulo bias. */
    public int nextInt(int bound) {
        if (bound <= 0) throw new IllegalArgumentException("bound must be positive, got " + bound);
        // Classic rejection: drop the top partial copy of [0, bound) in the 63-bit range.
        long bits;
        long value;
        do {
            bits = nextLong() >>> 1;
            value = bits % bound;
        } while (bits - value + (bound - 1) < 0);
        return (int) value;
    }

    /** Uniform in {@code [0, 1)} on the 2^-53 grid. */
    public double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }

    /** Shuffles {@code a} in place (Fisher-Yates). */
    public void shuffle(int[] a) {
        for (int i = a.length - 1; i > 0; i--) {
            int j = nextInt(i + 1);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }

    /** The SplitMix64 finaliser (Stafford's Mix13). */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
