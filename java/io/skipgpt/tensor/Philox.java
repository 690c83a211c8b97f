package io.skipgpt.tensor;

/**
 * The noise of one op that draws it ({@link Backend#routerGates}, {@link Backend#dropoutMask}): uniforms from
 * Philox4x32-10 (Salmon, Moraes, Dror and Shaw, SC 2011), a counter-based generator, under a 64-bit {@code key}; each
 * element draws from a counter made of its own index and {@code offset}. There is no state: the same key and offset
 * draw the same noise on every backend, in every run, so a caller that gives each call an offset of its own (a count
 * of calls, say) can resume a stream from that count alone.
 */
public record Philox(long key, long offset) {}
