package io.skipgpt.tensor;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * The op set as obvious Java loops with double accumulation: slow, and the oracle the other backends are tested
 * against. It reads and writes tensors through {@link Tensor#floats()} and {@link Tensor#ints()}, so row views
 * work as they do natively. Every op first runs the same argument checks as the other backends.
 */
public final class ReferenceBackend implements Backend {
    @Override
    public String name() {
        return "reference";
    }

    /** out[n, m] = x[n, k] · w[m, k]ᵀ */
    @Override
    public void matmul(Tensor out, Tensor x, Tensor w) {
        OpChecks.matmul(out, x, w);
        int n = x.rows(), k = x.cols(), m = w.rows();
        FloatBuffer o = out.floats(), a = x.floats(), b = w.floats();
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                double sum = 0;
                for (int p = 0; p < k; p++) sum += (double) a.get(i * k + p) * b.get(j * k + p);
                o.put(i * m + j, (float) sum);
            }
        }
    }

    /** out[n, d] = x / sqrt(mean(x²) + eps) * weight[d] */
    @Override
    public void rmsnorm(Tensor out, Tensor x, Tensor weight, float eps) {
        OpChecks.rmsnorm(out, x, weight);
        int n = x.rows(), d = x.cols();
        FloatBuffer o = out.floats(), a = x.floats(), g = weight.floats();
        for (int i = 0; i < n; i++) {
            double sumSq = 0;
            for (int j = 0; j < d; j++) sumSq += (double) a.get(i * d + j) * a.get(i * d + j);
            double scale = 1 / Math.sqrt(sumSq / d + eps);
            // out may be x: element j is read before it is written
            for (int j = 0; j < d; j++) o.put(i * d + j, (float) (a.get(i * d + j) * scale * g.get(j)));
        }
    }

    /** x[n, heads * headDim]: pair p of each head turns by positions[i] * theta^(-2p / headDim). */
    @Override
    public void rope(Tensor x, Tensor positions, int headDim, float theta, RopeStyle style) {
        OpChecks.rope(x, positions, headDim, theta);
        int n = x.rows(), cols = x.cols(), half = headDim / 2;
        FloatBuffer a = x.floats();
        IntBuffer pos = positions.ints();
        for (int i = 0; i < n; i++) {
            for (int head = 0; head < cols / headDim; head++) {
                int base = i * cols + head * headDim;
                for (int p = 0; p < half; p++) {
                    double angle = pos.get(i) * Math.pow(theta, -2.0 * p / headDim);
                    int first = style == RopeStyle.ADJACENT ? 2 * p : p;
                    int second = style == RopeStyle.ADJACENT ? 2 * p + 1 : p + half;
                    double x0 = a.get(base + first), x1 = a.get(base + second);
                    a.put(base + first, (float) (x0 * Math.cos(angle) - x1 * Math.sin(angle)));
                    a.put(base + second, (float) (x0 * Math.sin(angle) + x1 * Math.cos(angle)));
                }
            }
        }
    }

    /**
     * out[n, nHeads * headDim]: for query i and head h, softmax over keys 0..positions[i] of q·k / sqrt(headDim),
     * applied to v; query head h reads kv head h / (nHeads / nKvHeads).
     */
    @Override
    public void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor positions,
                          int nHeads, int nKvHeads, int headDim) {
        OpChecks.attention(out, q, k, v, positions, nHeads, nKvHeads, headDim);
        int n = q.rows(), qCols = q.cols(), kvCols = k.cols(), group = nHeads / nKvHeads;
        FloatBuffer o = out.floats(), qs = q.floats(), ks = k.floats(), vs = v.floats();
        IntBuffer pos = positions.ints();
        for (int i = 0; i < n; i++) {
            int keys = pos.get(i) + 1;
            for (int h = 0; h < nHeads; h++) {
                int qBase = i * qCols + h * headDim, kvOffset = (h / group) * headDim;
                double[] weights = new double[keys];
                double max = Double.NEGATIVE_INFINITY;
                for (int t = 0; t < keys; t++) {
                    double dot = 0;
                    for (int j = 0; j < headDim; j++) dot += (double) qs.get(qBase + j) * ks.get(t * kvCols + kvOffset + j);
                    weights[t] = dot / Math.sqrt(headDim);
                    max = Math.max(max, weights[t]);
                }
                double sum = 0;
                for (int t = 0; t < keys; t++) {
                    weights[t] = Math.exp(weights[t] - max);
                    sum += weights[t];
                }
                for (int j = 0; j < headDim; j++) {
                    double acc = 0;
                    for (int t = 0; t < keys; t++) acc += weights[t] / sum * vs.get(t * kvCols + kvOffset + j);
                    o.put(qBase + j, (float) acc);
                }
            }
        }
    }

    /** out = gate / (1 + e^-gate) * up */
    @Override
    public void swiglu(Tensor out, Tensor gate, Tensor up) {
        OpChecks.swiglu(out, gate, up);
        FloatBuffer o = out.floats(), g = gate.floats(), u = up.floats();
        for (int i = 0; i < o.limit(); i++) {
            double x = g.get(i);
            o.put(i, (float) (x / (1 + Math.exp(-x)) * u.get(i)));
        }
    }

    /** x[n, d] <- exp(x - max) / sum, row by row */
    @Override
    public void softmax(Tensor x) {
        OpChecks.softmax(x);
        int n = x.rows(), d = x.cols();
        FloatBuffer a = x.floats();
        for (int i = 0; i < n; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < d; j++) max = Math.max(max, a.get(i * d + j));
            double sum = 0;
            for (int j = 0; j < d; j++) sum += Math.exp(a.get(i * d + j) - max);
            for (int j = 0; j < d; j++) a.put(i * d + j, (float) (Math.exp(a.get(i * d + j) - max) / sum));
        }
    }

    /** out[n, d] = table[ids[i]] */
    @Override
    public void embedding(Tensor out, Tensor table, Tensor ids) {
        OpChecks.embedding(out, table, ids);
        copyRows(out, table, ids);
    }

    /** out[count, d] = src[idx[i]] */
    @Override
    public void gatherRows(Tensor out, Tensor src, Tensor idx) {
        OpChecks.gatherRows(out, src, idx);
        copyRows(out, src, idx);
    }

    /** dst[idx[i]] += src[i] */
    @Override
    public void scatterAddRows(Tensor dst, Tensor src, Tensor idx) {
        OpChecks.scatterAddRows(dst, src, idx);
        int d = src.cols();
        FloatBuffer o = dst.floats(), a = src.floats();
        IntBuffer rows = idx.ints();
        for (int i = 0; i < rows.limit(); i++) {
            for (int j = 0; j < d; j++) {
                int at = rows.get(i) * d + j;
                o.put(at, o.get(at) + a.get(i * d + j));
            }
        }
    }

    /** dst += src */
    @Override
    public void add(Tensor dst, Tensor src) {
        OpChecks.add(dst, src);
        FloatBuffer o = dst.floats(), a = src.floats();
        for (int i = 0; i < o.limit(); i++) o.put(i, o.get(i) + a.get(i));
    }

    /** loss[i] = log(sum_j exp(logits[i, j])) - logits[i, targets[i]] */
    @Override
    public void crossEntropy(Tensor loss, Tensor logits, Tensor targets) {
        OpChecks.crossEntropy(loss, logits, targets);
        int n = logits.rows(), vocab = logits.cols();
        FloatBuffer o = loss.floats(), a = logits.floats();
        IntBuffer target = targets.ints();
        for (int i = 0; i < n; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < vocab; j++) max = Math.max(max, a.get(i * vocab + j));
            double sum = 0;
            for (int j = 0; j < vocab; j++) sum += Math.exp(a.get(i * vocab + j) - max);
            o.put(i, (float) (Math.log(sum) + max - a.get(i * vocab + target.get(i))));
        }
    }

    /** out[i] = from[rows[i]] for out[count, d], from[*, d], rows[count] */
    private static void copyRows(Tensor out, Tensor from, Tensor rows) {
        int d = out.cols();
        FloatBuffer o = out.floats(), a = from.floats();
        IntBuffer r = rows.ints();
        for (int i = 0; i < r.limit(); i++) {
            for (int j = 0; j < d; j++) o.put(i * d + j, a.get(r.get(i) * d + j));
        }
    }
}
