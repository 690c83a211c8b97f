package io.skipgpt.model;

import io.skipgpt.tensor.Tensor;

/**
 * The activation buffers of one forward pass, sized for a number of rows and grown (never per op) when a
 * longer batch arrives; ops work on {@link Tensor#rows} views of the first n rows.
 */
final class Workspace implements AutoCloseable {
    private final LlamaConfig config;
    private int capacity;
    Tensor x; // [cap, dim] residual stream
    Tensor xb; // [cap, dim] normalised input of a sublayer
    Tensor q; // [cap, nHeads * headDim]
    Tensor k; // [cap, kvDim] keys of the batch's rows, before they go into their caches
    Tensor v; // [cap, kvDim] values likewise
    Tensor att; // [cap, nHeads * headDim] attention output before O
    Tensor proj; // [cap, dim] output of O or down projection
    Tensor gate; // [cap, hidden]
    Tensor up; // [cap, hidden]
    Tensor ids; // [cap] token ids
    Tensor pos; // [cap] positions
    Tensor xg; // [cap, dim] rows gathered for a routed sublayer
    Tensor idx; // [cap] indices of the kept rows
    Tensor keptPos; // [cap] positions of the kept rows
    boolean[] keepAttn; // [cap] this layer's attention decisions
    boolean[] keepMlp; // [cap] this layer's MLP decisions

    Workspace(LlamaConfig config) {
        this.config = config;
    }

    /** Makes room for n rows. */
    void ensure(int n) {
        if (n <= capacity) return;
        close();
        int cap = Math.max(n, Math.min(2 * capacity, config.contextLength()));
        int qDim = config.nHeads() * config.headDim();
        x = Tensor.f32(cap, config.dim());
        xb = Tensor.f32(cap, config.dim());
        q = Tensor.f32(cap, qDim);
        k = Tensor.f32(cap, config.kvDim());
        v = Tensor.f32(cap, config.kvDim());
        att = Tensor.f32(cap, qDim);
        proj = Tensor.f32(cap, config.dim());
        gate = Tensor.f32(cap, config.hiddenDim());
        up = Tensor.f32(cap, config.hiddenDim());
        ids = Tensor.i32(cap, 1);
        pos = Tensor.i32(cap, 1);
        xg = Tensor.f32(cap, config.dim());
        idx = Tensor.i32(cap, 1);
        keptPos = Tensor.i32(cap, 1);
        keepAttn = new boolean[cap];
        keepMlp = new boolean[cap];
        capacity = cap;
    }

    @Override
    public void close() {
        if (capacity == 0) return;
        for (Tensor t : new Tensor[] {x, xb, q, k, v, att, proj, gate, up, ids, pos, xg, idx, keptPos}) t.close();
        capacity = 0;
    }
}
