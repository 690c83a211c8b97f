package io.skipgpt.routing;

import io.skipgpt.model.LlamaConfig;

/**
 * What routing did over a run, counted over every position fed through the model (BOS included):
 * <ul>
 *   <li>module sparsity: the fraction of (token, layer, module) decisions that skipped;
 *   <li>per-layer keep rates for attention and MLP;
 *   <li>parameter sparsity as the SkipGPT paper counts it: per module, the skipped-token fraction times the
 *       module's parameter count, summed and divided by the decoder layers' parameters;
 *   <li>the real FLOP saving of the decoder layers: a skipped attention still computes K and V (later tokens
 *       attend to it), so it saves only Q, its attention row and O; a skipped MLP saves all of it.
 * </ul>
 */
public final class RoutingStats {
    private final LlamaConfig config;
    private final long[] tokens;
    private final long[] attnKept;
    private final long[] mlpKept;
    private double denseFlops;
    private double executedFlops;

    public RoutingStats(LlamaConfig config) {
        this.config = config;
        this.tokens = new long[config.nLayers()];
        this.attnKept = new long[config.nLayers()];
        this.mlpKept = new long[config.nLayers()];
    }

    /**
     * Records one layer's decisions for n rows.
     *
     * @param contextSum sum over all n rows of (position + 1): the keys each query attends to
     * @param keptContextSum the same over the rows that ran attention
     */
    public void record(int layer, int n, int attnKeptRows, int mlpKeptRows, long contextSum, long keptContextSum) {
        tokens[layer] += n;
        attnKept[layer] += attnKeptRows;
        mlpKept[layer] += mlpKeptRows;
        int d = config.dim(), q = config.nHeads() * config.headDim(), kv = config.kvDim(), h = config.hiddenDim();
        double qo = 2.0 * d * q * 2; // Q and O projections, per token
        double kvFlops = 2.0 * d * kv * 2; // K and V projections, per token, always run
        double core = 4.0 * q; // QKᵀ and PV, per token per attended key
        double mlp = 6.0 * d * h;
        denseFlops += n * (qo + kvFlops + mlp) + core * contextSum;
        executedFlops += n * kvFlops + attnKeptRows * qo + core * keptContextSum + mlpKeptRows * mlp;
    }

    public long tokens() {
        return tokens.length == 0 ? 0 : tokens[0];
    }

    public double[] attnKeep() {
        return rates(attnKept);
    }

    public double[] mlpKeep() {
        return rates(mlpKept);
    }

    public double moduleSparsity() {
        long decisions = 0, kept = 0;
        for (int l = 0; l < tokens.length; l++) {
            decisions += 2 * tokens[l];
            kept += attnKept[l] + mlpKept[l];
        }
        return decisions == 0 ? 0 : 1.0 - (double) kept / decisions;
    }

    public double paramSparsity() {
        int d = config.dim(), q = config.nHeads() * config.headDim(), kv = config.kvDim(), h = config.hiddenDim();
        double attnParams = 2.0 * d * q + 2.0 * d * kv;
        double mlpParams = 3.0 * d * h;
        double skipped = 0;
        for (int l = 0; l < tokens.length; l++) {
            if (tokens[l] == 0) continue;
            skipped += (1.0 - (double) attnKept[l] / tokens[l]) * attnParams;
            skipped += (1.0 - (double) mlpKept[l] / tokens[l]) * mlpParams;
        }
        return skipped / (tokens.length * (attnParams + mlpParams));
    }

    public double flopSaving() {
        return denseFlops == 0 ? 0 : 1.0 - executedFlops / denseFlops;
    }

    /**
     * FLOPs of the decoder layers had every module run, over everything recorded: per token Q, K, V, O and the three
     * MLP projections (2 FLOPs per weight), per attended key QKᵀ and PV.
     */
    public double denseFlops() {
        return denseFlops;
    }

    /** The decoder layers' FLOPs the routing executed (K and V always). */
    public double executedFlops() {
        return executedFlops;
    }

    /** dense FLOPs / executed FLOPs: the speed-up bound of the realised skip pattern. */
    public double flopBound() {
        return executedFlops == 0 ? 1 : denseFlops / executedFlops;
    }

    private double[] rates(long[] kept) {
        double[] r = new double[kept.length];
        for (int l = 0; l < kept.length; l++) r[l] = tokens[l] == 0 ? 1 : (double) kept[l] / tokens[l];
        return r;
    }
}
