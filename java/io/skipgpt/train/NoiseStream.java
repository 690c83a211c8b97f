package io.skipgpt.train;

import io.skipgpt.tensor.Philox;

/**
 * A run's noise as a stream (the gates' Gumbel noise, the adapter's dropout): each call of a backend op that draws
 * takes the next {@link Philox}, the stream's key at the next offset. The position is the whole state, so a
 * checkpoint stores it and {@code new NoiseStream(key, position)} draws from there on what the uninterrupted run
 * drew, on every backend. Not thread-safe: one stream per consumer.
 */
final class NoiseStream {
    private final long key;
    private long position;

    NoiseStream(long key, long position) {
        this.key = key;
        this.position = position;
    }

    /** The noise of the next call. */
    Philox next() {
        return new Philox(key, position++);
    }

    /** Calls drawn so far: the state to save. */
    long position() {
        return position;
    }
}
