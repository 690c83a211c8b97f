package io.skipgpt.eval;

import io.skipgpt.routing.Gate;
import io.skipgpt.tensor.Tensor;
import java.util.BitSet;

/**
 * Wraps a gate and records every decision it makes, per layer and position, in the order rows pass: for one
 * sequence run in one or more forward passes, position p of layer l is the p-th row that layer saw. Decisions
 * are the wrapped gate's, unchanged.
 */
public final class RecordingGate implements Gate {
    private final Gate inner;
    private final BitSet[] attn;
    private final BitSet[] mlp;
    private final int[] seen;

    public RecordingGate(Gate inner, int layers) {
        this.inner = inner;
        this.attn = new BitSet[layers];
        this.mlp = new BitSet[layers];
        this.seen = new int[layers];
        for (int l = 0; l < layers; l++) {
            attn[l] = new BitSet();
            mlp[l] = new BitSet();
        }
    }

    @Override
    public void decide(int layer, Tensor x, boolean[] keepAttn, boolean[] keepMlp) {
        inner.decide(layer, x, keepAttn, keepMlp);
        int n = x.rows(), at = seen[layer];
        for (int i = 0; i < n; i++) {
            attn[layer].set(at + i, keepAttn[i]);
            mlp[layer].set(at + i, keepMlp[i]);
        }
        seen[layer] = at + n;
    }

    /** Positions recorded (those the first layer saw). */
    public int positions() {
        return seen.length == 0 ? 0 : seen[0];
    }

    /** [layer][position]: whether attention ran. */
    public boolean[][] attention() {
        return matrix(attn);
    }

    /** [layer][position]: whether the MLP ran. */
    public boolean[][] mlp() {
        return matrix(mlp);
    }

    private boolean[][] matrix(BitSet[] bits) {
        boolean[][] m = new boolean[bits.length][];
        for (int l = 0; l < bits.length; l++) {
            m[l] = new boolean[seen[l]];
            for (int p = 0; p < seen[l]; p++) m[l][p] = bits[l].get(p);
        }
        return m;
    }
}
