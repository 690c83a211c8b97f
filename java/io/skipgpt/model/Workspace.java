package io.skipgpt.model;

import io.skipgpt.tensor.Backend;
import io.skipgpt.tensor.Tensor;

/**
 * The activation buffers of one forward pass on the backend's device, sized for a number of rows and grown
 * (never per op) when a longer batch arrives; ops work on {@link Tensor#rows} views of the first n rows. The
 * routing decisions and the index lists built from them stay on the host as plain arrays: each is uploaded
 * once per sublayer, a few bytes per row.
 */
final class Workspace implements AutoCloseable {
    private final LlamaConfig config;
    private final Backend backend;
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
    Tensor pos; // [3 cap] positions; for grouped caches also start rows and cache rows (LlamaModel.forward)
    Tensor xg; // [cap, dim] rows gathered for a routed sublayer
    Tensor idx; // [cap] indices of the kept rows
    Tensor keptPos; // [2 cap] positions of the kept rows; for grouped caches also their start rows
    Tensor gates; // [cap, 1] masked-dense gates, 0 or 1
    Tensor logits; // [logitCap, vocab] logits on the device, when the caller's are on the host
    boolean[] keepAttn; // [cap] this layer's attention decisions
    boolean[] keepMlp; // [cap] this layer's MLP decisions
    int[] hostIds; // [cap] token ids
    int[] hostPos; // [3 cap] positions, start rows, cache rows (see pos)
    int[] hostIdx; // [cap] kept rows, or the rows the head reads
    int[] hostKeptPos; // [2 cap] their positions and start rows (see keptPos)
    float[] hostGates; // [cap] masked-dense gates
    private Tensor stageInts; // [3 cap, 1] host staging of the int arrays on their way to the device
    private Tensor stageFloats; // [cap, 1] likewise for floats
    private int logitCap;

    Workspace(LlamaConfig config, Backend backend) {
        this.config = config;
        this.backend = backend;
    }

    /** Makes room for n rows. */
    void ensure(int n) {
        if (n <= capacity) return;
        closeRows(); // the logits are sized by the logit rows asked for, not by n: they stay
        int cap = Math.max(n, Math.min(2 * capacity, config.contextLength()));
        int qDim = config.nHeads() * config.headDim();
        x = f32(cap, config.dim());
        xb = f32(cap, config.dim());
        q = f32(cap, qDim);
        k = f32(cap, config.kvDim());
        v = f32(cap, config.kvDim());
        att = f32(cap, qDim);
        proj = f32(cap, config.dim());
        gate = f32(cap, config.hiddenDim());
        up = f32(cap, config.hiddenDim());
        ids = i32(cap);
        pos = i32(3 * cap);
        xg = f32(cap, config.dim());
        idx = i32(cap);
        keptPos = i32(2 * cap);
        gates = f32(cap, 1);
        keepAttn = new boolean[cap];
        keepMlp = new boolean[cap];
        hostIds = new int[cap];
        hostPos = new int[3 * cap];
        hostIdx = new int[cap];
        hostKeptPos = new int[2 * cap];
        hostGates = new float[cap];
        stageInts = Tensor.i32(3 * cap, 1);
        stageFloats = Tensor.f32(cap, 1);
        capacity = cap;
    }

    /** Device logits for n rows (grown when needed). */
    Tensor logits(int n) {
        if (n > logitCap) {
            if (logitCap > 0) logits.close();
            logitCap = Math.max(n, 2 * logitCap);
            logits = f32(logitCap, config.vocabSize());
        }
        return logits.rows(0, n);
    }

    /**
     * Copies the first n values of a host array into a [cap, 1] device tensor (through a staging tensor allocated
     * with the workspace, so an upload allocates nothing); returns the [n, 1] view.
     */
    Tensor upload(Tensor dst, int[] values, int n) {
        Tensor stage = stageInts.rows(0, n);
        stage.i32().put(values, 0, n);
        Tensor view = dst.rows(0, n);
        backend.copy(view, stage);
        return view;
    }

    /** As {@link #upload(Tensor, int[], int)} for floats. */
    Tensor upload(Tensor dst, float[] values, int n) {
        Tensor stage = stageFloats.rows(0, n);
        stage.f32().put(values, 0, n);
        Tensor view = dst.rows(0, n);
        backend.copy(view, stage);
        return view;
    }

    private Tensor f32(int rows, int cols) {
        return backend.allocate(Tensor.DType.F32, rows, cols);
    }

    private Tensor i32(int rows) {
        return backend.allocate(Tensor.DType.I32, rows, 1);
    }

    @Override
    public void close() {
        if (logitCap > 0) logits.close();
        logitCap = 0;
        closeRows();
    }

    private void closeRows() {
        if (capacity == 0) return;
        for (Tensor t : new Tensor[] {x, xb, q, k, v, att, proj, gate, up, ids, pos, xg, idx, keptPos, gates,
                stageInts, stageFloats}) {
            t.close();
        }
        capacity = 0;
    }
}
