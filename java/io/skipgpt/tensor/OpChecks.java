package io.skipgpt.tensor;

import java.nio.IntBuffer;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;

/**
 * Argument checks shared by every backend, so that all of them reject the same calls with the same messages.
 * Native kernels trust their arguments: a wrong shape or an out-of-range index there reads or writes foreign
 * memory instead of failing, so everything is checked before a kernel runs: dtypes, shapes, overlaps, that every
 * tensor lives on the backend's device, and, on the host, index values.
 *
 * <p>Index values (ids, positions, gather and scatter indices) are checked only when the backend computes on
 * the host. On a device they live in device memory: reading them here would cost a copy and a stream
 * synchronisation per op, which is what a device backend exists to avoid. A device backend therefore trusts
 * its index tensors; they are uploaded from host arrays the caller built (and may check) on the host. An index out of range there is a device-side memory error, reported by the
 * CUDA runtime at the next synchronisation.
 *
 * <p>Every tensor is F32 or I32 as the op says, with one exception: a device backend also takes a linear layer's
 * weight as BF16, the storage {@link Backend#uploadWeight} makes there (matmul, and matmulBackward for dx only,
 * since a bf16 weight is frozen). Host backends reject BF16 like any other wrong dtype.
 *
 * <p>Messages name the op and the shapes; they are built only on failure, since the checks run on every op.
 */
final class OpChecks {
    private final Device device;

    /** Checks for a backend whose tensors live on {@code device}. */
    OpChecks(Device device) {
        this.device = device;
    }

    /** out[n, m] = x[n, k] · w[m, k]ᵀ; out must not overlap x or w (BLAS reads them while writing out). */
    void matmul(Tensor out, Tensor x, Tensor w) {
        f32("matmul", "out", out, "x", x);
        weight("matmul", w);
        if (x.cols() != w.cols()) throw error("matmul: x %s and w %s disagree on k", s(x), s(w));
        if (out.rows() != x.rows() || out.cols() != w.rows()) {
            throw error("matmul: out %s should be [%d, %d] for x %s and w %s", s(out), x.rows(), w.rows(), s(x), s(w));
        }
        disjoint("matmul", "out", out, "x", x);
        disjoint("matmul", "out", out, "w", w);
    }

    /** out[n, d], x[n, d], weight[d]; out may be x. */
    void rmsnorm(Tensor out, Tensor x, Tensor weight) {
        f32("rmsnorm", "out", out, "x", x, "weight", weight);
        if (weight.size() != x.cols()) throw error("rmsnorm: weight %s does not match the rows of x %s", s(weight), s(x));
        sameRowsCols("rmsnorm", "out", out, "x", x);
    }

    /** x[n, heads * headDim], positions[n]; rotation pairs need an even head dimension. */
    void rope(Tensor x, Tensor positions, int headDim, float theta) {
        rope("rope", "x", x, positions, headDim, theta);
    }

    /**
     * q, out[n, nHeads * headDim]; k, v[t, nKvHeads * headDim]; positions[n], each in [0, t); keyStarts null or
     * [n] with keyStarts[i] >= 0 and keyStarts[i] + positions[i] < t.
     */
    void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor positions, Tensor keyStarts,
                          int nHeads, int nKvHeads, int headDim) {
        f32("attention", "out", out);
        attentionInputs("attention", q, k, v, positions, nHeads, nKvHeads, headDim);
        if (keyStarts != null) keyStarts(positions, keyStarts, k);
        sameRowsCols("attention", "out", out, "q", q);
        disjoint("attention", "out", out, "q", q);
        disjoint("attention", "out", out, "k", k);
        disjoint("attention", "out", out, "v", v);
    }

    private void keyStarts(Tensor positions, Tensor keyStarts, Tensor k) {
        i32("attention", "keyStarts", keyStarts);
        if (keyStarts.size() != positions.size()) {
            throw error("attention: keyStarts %s should have one entry per query, like positions %s",
                    s(keyStarts), s(positions));
        }
        if (device != Device.CPU) return;
        IntBuffer starts = keyStarts.ints(), pos = positions.ints();
        for (int i = 0; i < starts.limit(); i++) {
            long last = (long) starts.get(i) + pos.get(i);
            if (starts.get(i) < 0 || last >= k.rows()) {
                throw error("attention: query %d reads cache rows %d..%d, outside the rows of k %s",
                        i, starts.get(i), last, s(k));
            }
        }
    }

    // What attention and its backward check alike: q[n, nHeads * headDim], k and v[t, nKvHeads * headDim], GQA
    // head counts, positions[n] each in [0, t).
    private void attentionInputs(String op, Tensor q, Tensor k, Tensor v, Tensor positions, int nHeads, int nKvHeads,
                                 int headDim) {
        f32(op, "q", q, "k", k, "v", v);
        i32(op, "positions", positions);
        if (nHeads <= 0 || nKvHeads <= 0 || headDim <= 0 || nHeads % nKvHeads != 0) {
            throw error("%s: nHeads %d must be a positive multiple of nKvHeads %d, headDim %d positive",
                    op, nHeads, nKvHeads, headDim);
        }
        if (q.cols() != nHeads * headDim) throw error("%s: q %s should have %d x %d columns", op, s(q), nHeads, headDim);
        if (k.cols() != nKvHeads * headDim) throw error("%s: k %s should have %d x %d columns", op, s(k), nKvHeads, headDim);
        sameRowsCols(op, "v", v, "k", k);
        if (positions.size() != q.rows()) {
            throw error("%s: positions %s should have one entry per row of q %s", op, s(positions), s(q));
        }
        inRange(op, "positions", positions, k.rows(), "the cache rows of k", k);
    }

    /** out, gate, up: the same number of elements; out may be gate. */
    void swiglu(Tensor out, Tensor gate, Tensor up) {
        f32("swiglu", "out", out, "gate", gate, "up", up);
        if (gate.size() != up.size() || out.size() != gate.size()) {
            throw error("swiglu: out %s, gate %s and up %s differ in size", s(out), s(gate), s(up));
        }
    }

    void softmax(Tensor x) {
        f32("softmax", "x", x);
    }

    /** out[n, d], table[vocab, d], ids[n], each in [0, vocab). */
    void embedding(Tensor out, Tensor table, Tensor ids) {
        f32("embedding", "out", out, "table", table);
        i32("embedding", "ids", ids);
        if (out.cols() != table.cols() || out.rows() != ids.size()) {
            throw error("embedding: out %s should be [%d, %d] for ids %s and table %s",
                    s(out), ids.size(), table.cols(), s(ids), s(table));
        }
        inRange("embedding", "ids", ids, table.rows(), "the rows of table", table);
        disjoint("embedding", "out", out, "table", table);
    }

    /** out[count, d], src[rows, d], idx[count], each in [0, rows). */
    void gatherRows(Tensor out, Tensor src, Tensor idx) {
        f32("gatherRows", "out", out, "src", src);
        i32("gatherRows", "idx", idx);
        if (out.cols() != src.cols() || out.rows() != idx.size()) {
            throw error("gatherRows: out %s should be [%d, %d] for idx %s and src %s",
                    s(out), idx.size(), src.cols(), s(idx), s(src));
        }
        inRange("gatherRows", "idx", idx, src.rows(), "the rows of src", src);
        disjoint("gatherRows", "out", out, "src", src);
    }

    void scatterAddRows(Tensor dst, Tensor src, Tensor idx) {
        scatter("scatterAddRows", dst, src, idx);
    }

    void scatterRows(Tensor dst, Tensor src, Tensor idx) {
        scatter("scatterRows", dst, src, idx);
    }

    /**
     * dst[rows, d], src[count, d], idx[count]: distinct, each in [0, rows) — the kernel writes rows in parallel.
     * Distinctness, like the range, is checked on the host only.
     */
    private void scatter(String op, Tensor dst, Tensor src, Tensor idx) {
        f32(op, "dst", dst, "src", src);
        i32(op, "idx", idx);
        if (src.cols() != dst.cols() || src.rows() != idx.size()) {
            throw error("%s: src %s should be [%d, %d] for idx %s and dst %s",
                    op, s(src), idx.size(), dst.cols(), s(idx), s(dst));
        }
        inRange(op, "idx", idx, dst.rows(), "the rows of dst", dst);
        if (device == Device.CPU) {
            IntBuffer b = idx.ints();
            BitSet seen = new BitSet(dst.rows());
            for (int i = 0; i < b.limit(); i++) {
                if (seen.get(b.get(i))) throw error("%s: idx %s repeats row %d", op, s(idx), b.get(i));
                seen.set(b.get(i));
            }
        }
        disjoint(op, "dst", dst, "src", src);
    }

    /**
     * dst = src: one dtype, the same number of elements, disjoint; each on the host or on this backend's device
     * (BF16 exists only on a device, so it is copied device to device).
     */
    void copy(Tensor dst, Tensor src) {
        if (dst.dtype() != src.dtype() || dst.size() != src.size()) {
            throw error("copy: dst %s %s and src %s %s differ in dtype or size%s", s(dst), dst.dtype(), s(src),
                    src.dtype(), dst.dtype() != src.dtype() && (dst.dtype() == Tensor.DType.BF16
                            || src.dtype() == Tensor.DType.BF16) ? " (BF16 is device-only weight storage)" : "");
        }
        for (Tensor t : new Tensor[] {dst, src}) {
            if (t.device() != Device.CPU && t.device() != device) {
                throw error("copy: %s is on %s, but this backend moves data between CPU and %s", t, t.device(), device);
            }
        }
        disjoint("copy", "dst", dst, "src", src);
    }

    /** A weight to store in another dtype: F32, on the host or on this backend's device. */
    void uploadWeight(Tensor w) {
        if (w.dtype() != Tensor.DType.F32) throw error("uploadWeight: w %s should be F32, not %s", s(w), w.dtype());
        if (w.device() != Device.CPU) onDevice("uploadWeight", "w", w);
    }

    /** dst and src: the same number of elements. */
    void add(Tensor dst, Tensor src) {
        f32("add", "dst", dst, "src", src);
        if (dst.size() != src.size()) throw error("add: dst %s and src %s differ in size", s(dst), s(src));
    }

    /** loss[n], logits[n, vocab], targets[n], each in [0, vocab). */
    void crossEntropy(Tensor loss, Tensor logits, Tensor targets) {
        f32("crossEntropy", "loss", loss, "logits", logits);
        i32("crossEntropy", "targets", targets);
        if (loss.size() != logits.rows() || targets.size() != logits.rows()) {
            throw error("crossEntropy: loss %s and targets %s should have one entry per row of logits %s",
                    s(loss), s(targets), s(logits));
        }
        inRange("crossEntropy", "targets", targets, logits.cols(), "the columns of logits", logits);
    }

    /** out[n], a[n, d], b[n, d]; out must not overlap a or b. */
    void rowDot(Tensor out, Tensor a, Tensor b) {
        f32("rowDot", "out", out, "a", a, "b", b);
        sameRowsCols("rowDot", "a", a, "b", b);
        if (out.size() != a.rows()) throw error("rowDot: out %s should have one entry per row of a %s", s(out), s(a));
        disjoint("rowDot", "out", out, "a", a);
        disjoint("rowDot", "out", out, "b", b);
    }

    /** x[n, d], s[n]; s must not overlap x (a row would be scaled by a value it already changed). */
    void scaleRows(Tensor x, Tensor scale) {
        f32("scaleRows", "x", x, "s", scale);
        if (scale.size() != x.rows()) {
            throw error("scaleRows: s %s should have one entry per row of x %s", s(scale), s(x));
        }
        disjoint("scaleRows", "x", x, "s", scale);
    }

    /**
     * dy[n, m], x[n, k], w[m, k]; dx[n, k] and dw[m, k] each null or disjoint from every other argument; dw null
     * when w is BF16 (frozen storage: it has no gradient).
     */
    void matmulBackward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w) {
        f32("matmulBackward", "dy", dy, "x", x);
        weight("matmulBackward", w);
        if (dw != null && w.dtype() == Tensor.DType.BF16) {
            throw error("matmulBackward: w %s is BF16, frozen storage without a gradient: pass dw = null, or keep "
                    + "a trained weight in F32", s(w));
        }
        if (x.cols() != w.cols()) throw error("matmulBackward: x %s and w %s disagree on k", s(x), s(w));
        if (dy.rows() != x.rows() || dy.cols() != w.rows()) {
            throw error("matmulBackward: dy %s should be [%d, %d] for x %s and w %s",
                    s(dy), x.rows(), w.rows(), s(x), s(w));
        }
        if (dx != null) {
            f32("matmulBackward", "dx", dx);
            sameRowsCols("matmulBackward", "dx", dx, "x", x);
            disjoint("matmulBackward", "dx", dx, "dy", dy, "x", x, "w", w);
        }
        if (dw != null) {
            f32("matmulBackward", "dw", dw);
            sameRowsCols("matmulBackward", "dw", dw, "w", w);
            disjoint("matmulBackward", "dw", dw, "dy", dy, "x", x, "w", w);
            if (dx != null) disjoint("matmulBackward", "dw", dw, "dx", dx);
        }
    }

    /** dx, dy, x[n, d], weight[d], dWeight[d] or null; outputs disjoint from the inputs and each other. */
    void rmsnormBackward(Tensor dx, Tensor dWeight, Tensor dy, Tensor x, Tensor weight) {
        f32("rmsnormBackward", "dx", dx, "dy", dy, "x", x);
        f32("rmsnormBackward", "weight", weight);
        if (weight.size() != x.cols()) {
            throw error("rmsnormBackward: weight %s does not match the rows of x %s", s(weight), s(x));
        }
        sameRowsCols("rmsnormBackward", "dy", dy, "x", x);
        sameRowsCols("rmsnormBackward", "dx", dx, "x", x);
        disjoint("rmsnormBackward", "dx", dx, "dy", dy, "x", x, "weight", weight);
        if (dWeight != null) {
            f32("rmsnormBackward", "dWeight", dWeight);
            if (dWeight.size() != weight.size()) {
                throw error("rmsnormBackward: dWeight %s and weight %s differ in size", s(dWeight), s(weight));
            }
            disjoint("rmsnormBackward", "dWeight", dWeight, "dy", dy, "x", x, "weight", weight);
            disjoint("rmsnormBackward", "dWeight", dWeight, "dx", dx);
        }
    }

    /** As {@link #rope}. */
    void ropeBackward(Tensor dx, Tensor positions, int headDim, float theta) {
        rope("ropeBackward", "dx", dx, positions, headDim, theta);
    }

    /**
     * As {@link #attention} for q, k, v and positions; dOut and dq shaped like q, dk and dv like k; every output
     * disjoint from every other argument.
     */
    void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                  Tensor positions, int nHeads, int nKvHeads, int headDim) {
        String op = "attentionBackward";
        f32(op, "dq", dq, "dk", dk, "dv", dv);
        f32(op, "dOut", dOut);
        attentionInputs(op, q, k, v, positions, nHeads, nKvHeads, headDim);
        sameRowsCols(op, "dOut", dOut, "q", q);
        sameRowsCols(op, "dq", dq, "q", q);
        sameRowsCols(op, "dk", dk, "k", k);
        sameRowsCols(op, "dv", dv, "k", k);
        disjoint(op, "dq", dq, "dOut", dOut, "q", q, "k", k);
        disjoint(op, "dq", dq, "v", v, "dk", dk, "dv", dv);
        disjoint(op, "dk", dk, "dOut", dOut, "q", q, "k", k);
        disjoint(op, "dk", dk, "v", v);
        disjoint(op, "dk", dk, "dv", dv);
        disjoint(op, "dv", dv, "dOut", dOut, "q", q, "k", k);
        disjoint(op, "dv", dv, "v", v);
    }

    /** Five tensors of one size; dGate and dUp disjoint (each may be an input, element for element). */
    void swigluBackward(Tensor dGate, Tensor dUp, Tensor dOut, Tensor gate, Tensor up) {
        f32("swigluBackward", "dGate", dGate, "dUp", dUp, "dOut", dOut);
        f32("swigluBackward", "gate", gate, "up", up);
        long size = dOut.size();
        if (dGate.size() != size || dUp.size() != size || gate.size() != size || up.size() != size) {
            throw error("swigluBackward: dGate %s, dUp %s, dOut %s, gate %s and up %s differ in size",
                    s(dGate), s(dUp), s(dOut), s(gate), s(up));
        }
        disjoint("swigluBackward", "dGate", dGate, "dUp", dUp);
    }

    /** As {@link #crossEntropy}; dLogits shaped like logits (may be logits); dLoss[n] or null. */
    void crossEntropyBackward(Tensor dLogits, Tensor logits, Tensor targets, Tensor dLoss) {
        String op = "crossEntropyBackward";
        f32(op, "dLogits", dLogits, "logits", logits);
        i32(op, "targets", targets);
        sameRowsCols(op, "dLogits", dLogits, "logits", logits);
        if (targets.size() != logits.rows()) {
            throw error("%s: targets %s should have one entry per row of logits %s", op, s(targets), s(logits));
        }
        inRange(op, "targets", targets, logits.cols(), "the columns of logits", logits);
        if (dLoss != null) {
            f32(op, "dLoss", dLoss);
            if (dLoss.size() != logits.rows()) {
                throw error("%s: dLoss %s should have one entry per row of logits %s", op, s(dLoss), s(logits));
            }
            disjoint(op, "dLogits", dLogits, "dLoss", dLoss);
        }
    }

    /**
     * gates, soft [2, n] (written, disjoint from each other and the inputs); logits[n, 4]; bias of 4 elements;
     * hardGates [2, n] or null, hardSoft [2, n] or null (only with hardGates); tau positive.
     */
    void routerGates(Tensor gates, Tensor soft, Tensor logits, Tensor bias, double tau, Tensor hardGates,
                     Tensor hardSoft) {
        String op = "routerGates";
        f32(op, "gates", gates, "soft", soft, "logits", logits);
        f32(op, "bias", bias);
        gateShapes(op, "logits", logits, "bias", bias, tau, "gates", gates, "soft", soft);
        if (hardSoft != null && hardGates == null) throw error("%s: hardSoft needs hardGates", op);
        disjoint(op, "gates", gates, "logits", logits, "bias", bias, "soft", soft);
        disjoint(op, "soft", soft, "logits", logits);
        disjoint(op, "soft", soft, "bias", bias);
        for (Tensor hard : new Tensor[] {hardGates, hardSoft}) {
            if (hard == null) continue;
            String name = hard == hardGates ? "hardGates" : "hardSoft";
            f32(op, name, hard);
            sameRowsCols(op, name, hard, "gates", gates);
            disjoint(op, "gates", gates, name, hard);
            disjoint(op, "soft", soft, name, hard);
        }
    }

    /** dLogits[n, 4] (written); dBias of 4 elements (added into); dGates, soft [2, n]; outputs disjoint from the rest. */
    void routerGatesBackward(Tensor dLogits, Tensor dBias, Tensor dGates, Tensor soft, double tau) {
        String op = "routerGatesBackward";
        f32(op, "dLogits", dLogits, "dBias", dBias, "dGates", dGates);
        f32(op, "soft", soft);
        gateShapes(op, "dLogits", dLogits, "dBias", dBias, tau, "dGates", dGates, "soft", soft);
        disjoint(op, "dLogits", dLogits, "dBias", dBias, "dGates", dGates, "soft", soft);
        disjoint(op, "dBias", dBias, "dGates", dGates);
        disjoint(op, "dBias", dBias, "soft", soft);
    }

    // logits[n, 4], bias of 4 elements, two [2, n] tensors, tau > 0
    private void gateShapes(String op, String zName, Tensor logits, String bName, Tensor bias, double tau, String n1,
                            Tensor t1, String n2, Tensor t2) {
        if (logits.cols() != 4) throw error("%s: %s %s should have 4 columns", op, zName, s(logits));
        if (bias.size() != 4) throw error("%s: %s %s should have 4 elements", op, bName, s(bias));
        for (Tensor t : new Tensor[] {t1, t2}) {
            if (t.rank() != 2 || t.dim(0) != 2 || t.dim(1) != logits.rows()) {
                throw error("%s: %s %s should be [2, %d] for %s %s", op, t == t1 ? n1 : n2, s(t), logits.rows(), zName,
                        s(logits));
            }
        }
        if (!(tau > 0) || Double.isInfinite(tau)) throw error("%s: tau %s must be positive and finite", op, tau);
    }

    /** param, grad, m, v: F32 of one shape, pairwise disjoint. */
    void adamw(Tensor param, Tensor grad, Tensor m, Tensor v) {
        f32("adamw", "param", param, "grad", grad, "m", m);
        f32("adamw", "v", v);
        for (Tensor t : new Tensor[] {grad, m, v}) {
            if (!Arrays.equals(t.shape(), param.shape())) {
                throw error("adamw: param %s, grad %s, m %s and v %s differ in shape", s(param), s(grad), s(m), s(v));
            }
        }
        disjoint("adamw", "param", param, "grad", grad, "m", m, "v", v);
        disjoint("adamw", "grad", grad, "m", m);
        disjoint("adamw", "grad", grad, "v", v);
        disjoint("adamw", "m", m, "v", v);
    }

    /** mask F32, rate in [0, 1). */
    void dropoutMask(Tensor mask, double rate) {
        f32("dropoutMask", "mask", mask);
        if (!(rate >= 0 && rate < 1)) throw error("dropoutMask: rate %s is not in [0, 1)", rate);
    }

    /** Every tensor F32. */
    void sumOfSquares(List<Tensor> xs) {
        for (int i = 0; i < xs.size(); i++) {
            Tensor x = xs.get(i);
            // the name is built only on failure: the check runs on every training step
            if (x.dtype() != Tensor.DType.F32 || x.device() != device) f32("sumOfSquares", "xs[" + i + "]", x);
        }
    }

    /** The largest LoRA rank the kernels take (SG_LORA_MAX_RANK: their per-block intermediates are sized by it). */
    static final int MAX_LORA_RANK = 256;

    /** out[n, m], x[n, k], a[r, k], b[m, r], 1 ≤ r ≤ MAX_LORA_RANK; out disjoint from the inputs. */
    void loraForward(Tensor out, Tensor x, Tensor a, Tensor b) {
        loraShapes("loraForward", x, a, b);
        f32("loraForward", "out", out);
        if (out.rows() != x.rows() || out.cols() != b.rows()) {
            throw error("loraForward: out %s should be [%d, %d] for x %s and b %s", s(out), x.rows(), b.rows(), s(x), s(b));
        }
        disjoint("loraForward", "out", out, "x", x, "a", a, "b", b);
    }

    /** As {@link #loraForward}; dy[n, m], dx like x, dA like a, dB like b; every output disjoint from everything else. */
    void loraBackward(Tensor dx, Tensor dA, Tensor dB, Tensor dy, Tensor x, Tensor a, Tensor b) {
        String op = "loraBackward";
        loraShapes(op, x, a, b);
        f32(op, "dx", dx, "dA", dA, "dB", dB);
        f32(op, "dy", dy);
        if (dy.rows() != x.rows() || dy.cols() != b.rows()) {
            throw error("%s: dy %s should be [%d, %d] for x %s and b %s", op, s(dy), x.rows(), b.rows(), s(x), s(b));
        }
        sameRowsCols(op, "dx", dx, "x", x);
        sameRowsCols(op, "dA", dA, "a", a);
        sameRowsCols(op, "dB", dB, "b", b);
        disjoint(op, "dx", dx, "dy", dy, "x", x, "a", a);
        disjoint(op, "dx", dx, "b", b, "dA", dA, "dB", dB);
        disjoint(op, "dA", dA, "dy", dy, "x", x, "a", a);
        disjoint(op, "dA", dA, "b", b, "dB", dB, "dx", dx);
        disjoint(op, "dB", dB, "dy", dy, "x", x, "a", a);
        disjoint(op, "dB", dB, "b", b);
    }

    private void loraShapes(String op, Tensor x, Tensor a, Tensor b) {
        f32(op, "x", x, "a", a, "b", b);
        int r = a.rows();
        if (r < 1 || r > MAX_LORA_RANK) throw error("%s: rank %d of a %s must be in [1, %d]", op, r, s(a), MAX_LORA_RANK);
        if (a.cols() != x.cols()) throw error("%s: x %s and a %s disagree on k", op, s(x), s(a));
        if (b.cols() != r) throw error("%s: b %s should have %d columns, the rank of a %s", op, s(b), r, s(a));
    }

    private void rope(String op, String name, Tensor x, Tensor positions, int headDim, float theta) {
        f32(op, name, x);
        i32(op, "positions", positions);
        if (headDim <= 0 || headDim % 2 != 0) throw error("%s: headDim %d must be positive and even", op, headDim);
        if (x.cols() % headDim != 0) throw error("%s: %s %s is not a whole number of heads of %d", op, name, s(x), headDim);
        if (positions.size() != x.rows()) {
            throw error("%s: positions %s should have one entry per row of %s %s", op, s(positions), name, s(x));
        }
        if (!(theta > 0)) throw error("%s: theta %s must be positive", op, theta);
    }

    private void f32(String op, String name, Tensor t) {
        if (t.dtype() != Tensor.DType.F32) throw error("%s: %s %s should be F32, not %s", op, name, s(t), t.dtype());
        onDevice(op, name, t);
    }

    /** A linear layer's weight w: F32, or BF16 on a device backend (see the class comment). */
    private void weight(String op, Tensor w) {
        if (w.dtype() == Tensor.DType.BF16 && device != Device.CPU) onDevice(op, "w", w);
        else f32(op, "w", w);
    }

    private void f32(String op, String n1, Tensor t1, String n2, Tensor t2) {
        f32(op, n1, t1);
        f32(op, n2, t2);
    }

    private void f32(String op, String n1, Tensor t1, String n2, Tensor t2, String n3, Tensor t3) {
        f32(op, n1, t1, n2, t2);
        f32(op, n3, t3);
    }

    private void i32(String op, String name, Tensor t) {
        if (t.dtype() != Tensor.DType.I32) throw error("%s: %s %s should be I32, not %s", op, name, s(t), t.dtype());
        onDevice(op, name, t);
    }

    private void onDevice(String op, String name, Tensor t) {
        if (t.device() != device) {
            throw error("%s: %s %s is on %s, but this backend computes on %s: move it with Backend.copy or upload",
                    op, name, s(t), t.device(), device);
        }
    }

    private void sameRowsCols(String op, String n1, Tensor t1, String n2, Tensor t2) {
        if (t1.rows() != t2.rows() || t1.cols() != t2.cols()) {
            throw error("%s: %s %s and %s %s differ in shape", op, n1, s(t1), n2, s(t2));
        }
    }

    /**
     * Every value of the int tensor t lies in [0, bound), bound being a dimension of the tensor `of`. Checked on
     * the host only (see the class comment).
     */
    private void inRange(String op, String name, Tensor t, int bound, String what, Tensor of) {
        if (device != Device.CPU) return;
        IntBuffer b = t.ints();
        for (int i = 0; i < b.limit(); i++) {
            int v = b.get(i);
            if (v < 0 || v >= bound) throw error("%s: %s[%d] = %d is outside %s %s", op, name, i, v, what, s(of));
        }
    }

    /** t is disjoint from each of the others. */
    private void disjoint(String op, String name, Tensor t, String n1, Tensor t1, String n2, Tensor t2,
                                 String n3, Tensor t3) {
        disjoint(op, name, t, n1, t1);
        disjoint(op, name, t, n2, t2);
        disjoint(op, name, t, n3, t3);
    }

    private void disjoint(String op, String n1, Tensor t1, String n2, Tensor t2) {
        long a = start(t1), b = start(t2);
        if (t1.bytes() > 0 && t2.bytes() > 0 && a < b + t2.bytes() && b < a + t1.bytes()) {
            throw error("%s: %s %s overlaps %s %s in memory", op, n1, s(t1), n2, s(t2));
        }
    }

    /**
     * Address of the tensor's first byte: a view is its base address plus a position in elements. Read from the
     * tensor's own pointer: the checks run on every op, and {@link Tensor#bytePointer} makes a new one.
     */
    private static long start(Tensor t) {
        var p = t.pointer();
        return p.address() + p.position() * t.dtype().bytes;
    }

    private static String s(Tensor t) {
        return Arrays.toString(t.shape());
    }

    private static IllegalArgumentException error(String format, Object... args) {
        return new IllegalArgumentException(String.format(format, args));
    }
}
