package io.skipgpt.train;

import io.skipgpt.tensor.GumbelNoise;

/**
 * The Gumbel noise of a run's gates as a stream: each call of the backend's {@code routerGates} takes the next
 * {@link GumbelNoise}, the run's Philox key at the next offset. The position is the whole state, so a checkpoint
 * stores it and {@code new GateNoise(key, position)} draws from there on what the uninterrupted run drew, on every
 * backend. Not thread-safe: one stream per consumer.
 */
final class GateNoise {
    private final long key;
    private long position;

    GateNoise(long key, long position) {
        this.key = key;
        this.position = position;
    }

    /** The noise of the next call. */
    GumbelNoise next() {
        return new GumbelNoise(key, position++);
    }

    /** Calls drawn so far: the state to save. */
    long position() {
        return position;
    }
}
