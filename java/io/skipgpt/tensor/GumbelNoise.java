package io.skipgpt.tensor;

/**
 * The Gumbel noise of one {@link Backend#routerGates} call: uniforms from Philox4x32-10 (Salmon, Moraes, Dror and
 * Shaw, SC 2011), a counter-based generator, under a 64-bit {@code key}; the gate of row i and module j draws its two
 * uniforms from the counter (i, j, offset). There is no state: the same key and offset draw the same noise on every
 * backend, in every run, so a caller that gives each call an offset of its own (a count of calls, say) can resume a
 * stream from that count alone.
 */
public record GumbelNoise(long key, long offset) {}
