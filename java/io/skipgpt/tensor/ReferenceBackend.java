package io.skipgpt.tensor;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.List;

/**
 * The op set as obvious Java loops with double accumulation: slow, and the oracle the other backends are tested
 * against. It reads and writes tensors through {@link Tensor#floats()} and {@link Tensor#ints()}, so row views
 * work as they do natively. Every op first runs the same argument checks as the other backends.
 */
public final class ReferenceBackend extends HostBackend {
    @Override
    public String name() {
        return "reference";
    }

    /** out[n, m] = x[n, k] · w[m, k]ᵀ */
    @Override
    public void matmul(Tensor out, Tensor x, Tensor w) {
        CHECK.matmul(out, x, w);
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
        CHECK.rmsnorm(out, x, weight);
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
        CHECK.rope(x, positions, headDim, theta);
        rotate(x, positions, headDim, theta, style, 1);
    }

    /**
     * out[n, nHeads * headDim]: for query i and head h, softmax over keys 0..positions[i] of q·k / sqrt(headDim),
     * applied to v; query head h reads kv head h / (nHeads / nKvHeads), key t of query i is row
     * keyStarts[i] + t of k and v (row t when keyStarts is null).
     */
    @Override
    public void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor positions, Tensor keyStarts,
                          int nHeads, int nKvHeads, int headDim) {
        CHECK.attention(out, q, k, v, positions, keyStarts, nHeads, nKvHeads, headDim);
        int n = q.rows(), qCols = q.cols(), kvCols = k.cols(), group = nHeads / nKvHeads;
        FloatBuffer o = out.floats(), qs = q.floats(), ks = k.floats(), vs = v.floats();
        IntBuffer pos = positions.ints();
        for (int i = 0; i < n; i++) {
            int keys = pos.get(i) + 1, first = keyStarts == null ? 0 : keyStarts.getInt(i);
            for (int h = 0; h < nHeads; h++) {
                int qBase = i * qCols + h * headDim, kvOffset = first * kvCols + (h / group) * headDim;
                double[] weights = attentionWeights(qs, qBase, ks, kvCols, kvOffset, keys, headDim);
                for (int j = 0; j < headDim; j++) {
                    double acc = 0;
                    for (int t = 0; t < keys; t++) acc += weights[t] * vs.get(t * kvCols + kvOffset + j);
                    o.put(qBase + j, (float) acc);
                }
            }
        }
    }

    /** out = gate / (1 + e^-gate) * up */
    @Override
    public void swiglu(Tensor out, Tensor gate, Tensor up) {
        CHECK.swiglu(out, gate, up);
        FloatBuffer o = out.floats(), g = gate.floats(), u = up.floats();
        for (int i = 0; i < o.limit(); i++) {
            double x = g.get(i);
            o.put(i, (float) (x / (1 + Math.exp(-x)) * u.get(i)));
        }
    }

    /** x[n, d] <- exp(x - max) / sum, row by row */
    @Override
    public void softmax(Tensor x) {
        CHECK.softmax(x);
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
        CHECK.embedding(out, table, ids);
        copyRows(out, table, ids);
    }

    /** out[count, d] = src[idx[i]] */
    @Override
    public void gatherRows(Tensor out, Tensor src, Tensor idx) {
        CHECK.gatherRows(out, src, idx);
        copyRows(out, src, idx);
    }

    /** dst[idx[i]] = src[i] */
    @Override
    public void scatterRows(Tensor dst, Tensor src, Tensor idx) {
        CHECK.scatterRows(dst, src, idx);
        scatter(dst, src, idx, false);
    }

    /** dst[idx[i]] += src[i] */
    @Override
    public void scatterAddRows(Tensor dst, Tensor src, Tensor idx) {
        CHECK.scatterAddRows(dst, src, idx);
        scatter(dst, src, idx, true);
    }

    /** dst += src */
    @Override
    public void add(Tensor dst, Tensor src) {
        CHECK.add(dst, src);
        FloatBuffer o = dst.floats(), a = src.floats();
        for (int i = 0; i < o.limit(); i++) o.put(i, o.get(i) + a.get(i));
    }

    /** loss[i] = log(sum_j exp(logits[i, j])) - logits[i, targets[i]] */
    @Override
    public void crossEntropy(Tensor loss, Tensor logits, Tensor targets) {
        CHECK.crossEntropy(loss, logits, targets);
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

    /** out[i] = a_i · b_i */
    @Override
    public void rowDot(Tensor out, Tensor a, Tensor b) {
        CHECK.rowDot(out, a, b);
        int n = a.rows(), d = a.cols();
        FloatBuffer o = out.floats(), x = a.floats(), y = b.floats();
        for (int i = 0; i < n; i++) {
            double sum = 0;
            for (int j = 0; j < d; j++) sum += (double) x.get(i * d + j) * y.get(i * d + j);
            o.put(i, (float) sum);
        }
    }

    /** x[i, j] *= s[i] */
    @Override
    public void scaleRows(Tensor x, Tensor s) {
        CHECK.scaleRows(x, s);
        int n = x.rows(), d = x.cols();
        FloatBuffer a = x.floats(), scale = s.floats();
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) a.put(i * d + j, a.get(i * d + j) * scale.get(i));
        }
    }

    /** dx[n, k] (=|+=) Σ_j dy[i, j] w[j, p]; dw[m, k] += Σ_i dy[i, j] x[i, p] */
    @Override
    public void matmulBackward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, boolean addToDx) {
        CHECK.matmulBackward(dx, dw, dy, x, w);
        int n = x.rows(), k = x.cols(), m = w.rows();
        FloatBuffer g = dy.floats(), a = x.floats(), b = w.floats();
        if (dx != null) {
            FloatBuffer o = dx.floats();
            for (int i = 0; i < n; i++) {
                for (int p = 0; p < k; p++) {
                    double sum = addToDx ? o.get(i * k + p) : 0;
                    for (int j = 0; j < m; j++) sum += (double) g.get(i * m + j) * b.get(j * k + p);
                    o.put(i * k + p, (float) sum);
                }
            }
        }
        if (dw != null) {
            FloatBuffer o = dw.floats();
            for (int j = 0; j < m; j++) {
                for (int p = 0; p < k; p++) {
                    double sum = o.get(j * k + p);
                    for (int i = 0; i < n; i++) sum += (double) g.get(i * m + j) * a.get(i * k + p);
                    o.put(j * k + p, (float) sum);
                }
            }
        }
    }

    /** dx = r w dy - x r³/d Σ dy w x per row; dWeight += Σ_i dy x r */
    @Override
    public void rmsnormBackward(Tensor dx, Tensor dWeight, Tensor dy, Tensor x, Tensor weight, float eps) {
        CHECK.rmsnormBackward(dx, dWeight, dy, x, weight);
        int n = x.rows(), d = x.cols();
        FloatBuffer o = dx.floats(), g = dy.floats(), a = x.floats(), wt = weight.floats();
        double[] dWeightSum = new double[d];
        for (int i = 0; i < n; i++) {
            double sumSq = 0, dot = 0;
            for (int j = 0; j < d; j++) {
                double xj = a.get(i * d + j);
                sumSq += xj * xj;
                dot += g.get(i * d + j) * (double) wt.get(j) * xj;
            }
            double r = 1 / Math.sqrt(sumSq / d + eps), coef = dot * r * r * r / d;
            for (int j = 0; j < d; j++) {
                double xj = a.get(i * d + j), gj = g.get(i * d + j);
                o.put(i * d + j, (float) (r * wt.get(j) * gj - xj * coef));
                dWeightSum[j] += gj * xj * r;
            }
        }
        if (dWeight != null) {
            FloatBuffer dwt = dWeight.floats();
            for (int j = 0; j < d; j++) dwt.put(j, (float) (dwt.get(j) + dWeightSum[j]));
        }
    }

    /** dx[n, heads * headDim]: pair p of each head turns back by positions[i] * theta^(-2p / headDim). */
    @Override
    public void ropeBackward(Tensor dx, Tensor positions, int headDim, float theta, RopeStyle style) {
        CHECK.ropeBackward(dx, positions, headDim, theta);
        rotate(dx, positions, headDim, theta, style, -1);
    }

    /**
     * Per query i and head h, with P the softmax row and dP_t = dOut·v_t, D = Σ P_t dP_t:
     * dq = Σ_t P_t (dP_t - D) k_t / √headDim; dk_t += P_t (dP_t - D) q / √headDim; dv_t += P_t dOut.
     * dk and dv are summed in double over all rows, then added into the tensors once.
     */
    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                  Tensor positions, int nHeads, int nKvHeads, int headDim) {
        CHECK.attentionBackward(dq, dk, dv, dOut, q, k, v, positions, nHeads, nKvHeads, headDim);
        int n = q.rows(), qCols = q.cols(), kvCols = k.cols(), group = nHeads / nKvHeads;
        FloatBuffer dqs = dq.floats(), gs = dOut.floats(), qs = q.floats(), ks = k.floats(), vs = v.floats();
        IntBuffer pos = positions.ints();
        double scale = 1 / Math.sqrt(headDim);
        double[] dkSum = new double[k.rows() * kvCols], dvSum = new double[k.rows() * kvCols];
        for (int i = 0; i < n; i++) {
            int keys = pos.get(i) + 1;
            for (int h = 0; h < nHeads; h++) {
                int qBase = i * qCols + h * headDim, kvOffset = (h / group) * headDim;
                double[] p = attentionWeights(qs, qBase, ks, kvCols, kvOffset, keys, headDim);
                double[] dp = new double[keys];
                double dSum = 0;
                for (int t = 0; t < keys; t++) {
                    for (int j = 0; j < headDim; j++) dp[t] += (double) gs.get(qBase + j) * vs.get(t * kvCols + kvOffset + j);
                    dSum += p[t] * dp[t];
                }
                double[] dqRow = new double[headDim];
                for (int t = 0; t < keys; t++) {
                    double ds = p[t] * (dp[t] - dSum) * scale;
                    for (int j = 0; j < headDim; j++) {
                        int kv = t * kvCols + kvOffset + j;
                        dqRow[j] += ds * ks.get(kv);
                        dkSum[kv] += ds * qs.get(qBase + j);
                        dvSum[kv] += p[t] * gs.get(qBase + j);
                    }
                }
                for (int j = 0; j < headDim; j++) dqs.put(qBase + j, (float) dqRow[j]);
            }
        }
        FloatBuffer dks = dk.floats(), dvs = dv.floats();
        for (int e = 0; e < dkSum.length; e++) {
            dks.put(e, (float) (dks.get(e) + dkSum[e]));
            dvs.put(e, (float) (dvs.get(e) + dvSum[e]));
        }
    }

    /** dGate = dOut·up·σ·(1 + gate·(1 - σ)), dUp = dOut·gate·σ, σ = 1 / (1 + e^-gate) */
    @Override
    public void swigluBackward(Tensor dGate, Tensor dUp, Tensor dOut, Tensor gate, Tensor up) {
        CHECK.swigluBackward(dGate, dUp, dOut, gate, up);
        FloatBuffer dg = dGate.floats(), du = dUp.floats(), dy = dOut.floats(), g = gate.floats(), u = up.floats();
        for (int i = 0; i < dy.limit(); i++) {
            double x = g.get(i), y = u.get(i), grad = dy.get(i), sigma = 1 / (1 + Math.exp(-x));
            dg.put(i, (float) (grad * y * sigma * (1 + x * (1 - sigma))));
            du.put(i, (float) (grad * x * sigma));
        }
    }

    /** dLogits[i, j] = scale · (dLoss[i] or 1) · (softmax(logits[i])[j] - [j = targets[i]]) */
    @Override
    public void crossEntropyBackward(Tensor dLogits, Tensor logits, Tensor targets, Tensor dLoss, float scale) {
        CHECK.crossEntropyBackward(dLogits, logits, targets, dLoss);
        int n = logits.rows(), vocab = logits.cols();
        FloatBuffer o = dLogits.floats(), a = logits.floats(), c = dLoss == null ? null : dLoss.floats();
        IntBuffer target = targets.ints();
        for (int i = 0; i < n; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < vocab; j++) max = Math.max(max, a.get(i * vocab + j));
            double sum = 0;
            for (int j = 0; j < vocab; j++) sum += Math.exp(a.get(i * vocab + j) - max);
            double coef = (double) scale * (c == null ? 1 : c.get(i));
            // dLogits may be logits: element j is read before it is written
            for (int j = 0; j < vocab; j++) {
                double p = Math.exp(a.get(i * vocab + j) - max) / sum;
                o.put(i * vocab + j, (float) (coef * (p - (j == target.get(i) ? 1 : 0))));
            }
        }
    }

    /** u = x·aᵀ in double, then out[i, j] += scale · Σ_t u[i, t]·b[j, t] */
    @Override
    public void loraForward(Tensor out, Tensor x, Tensor a, Tensor b, float scale) {
        CHECK.loraForward(out, x, a, b);
        int n = x.rows(), m = b.rows(), r = a.rows();
        double[] u = lowRank(x, a);
        FloatBuffer o = out.floats(), bs = b.floats();
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                double sum = 0;
                for (int t = 0; t < r; t++) sum += u[i * r + t] * bs.get(j * r + t);
                o.put(i * m + j, (float) (o.get(i * m + j) + scale * sum));
            }
        }
    }

    /** u = x·aᵀ, g = scale·dy·b; dx += g·a, dA += gᵀ·x, dB += scale·dyᵀ·u, each summed in double, added once */
    @Override
    public void loraBackward(Tensor dx, Tensor dA, Tensor dB, Tensor dy, Tensor x, Tensor a, Tensor b, float scale) {
        CHECK.loraBackward(dx, dA, dB, dy, x, a, b);
        int n = x.rows(), k = x.cols(), m = b.rows(), r = a.rows();
        double[] u = lowRank(x, a), g = new double[n * r];
        FloatBuffer gy = dy.floats(), xs = x.floats(), as = a.floats(), bs = b.floats();
        for (int i = 0; i < n; i++) {
            for (int t = 0; t < r; t++) {
                double sum = 0;
                for (int j = 0; j < m; j++) sum += (double) gy.get(i * m + j) * bs.get(j * r + t);
                g[i * r + t] = scale * sum;
            }
        }
        FloatBuffer dxs = dx.floats(), das = dA.floats(), dbs = dB.floats();
        for (int i = 0; i < n; i++) {
            for (int p = 0; p < k; p++) {
                double sum = 0;
                for (int t = 0; t < r; t++) sum += g[i * r + t] * as.get(t * k + p);
                dxs.put(i * k + p, (float) (dxs.get(i * k + p) + sum));
            }
        }
        for (int t = 0; t < r; t++) {
            for (int p = 0; p < k; p++) {
                double sum = 0;
                for (int i = 0; i < n; i++) sum += g[i * r + t] * xs.get(i * k + p);
                das.put(t * k + p, (float) (das.get(t * k + p) + sum));
            }
            for (int j = 0; j < m; j++) {
                double sum = 0;
                for (int i = 0; i < n; i++) sum += (double) gy.get(i * m + j) * u[i * r + t];
                dbs.put(j * r + t, (float) (dbs.get(j * r + t) + scale * sum));
            }
        }
    }

    /**
     * Per row i and module j: a from the biased logits and, with noise, two Gumbel draws from {@link #philox} at
     * counter (i, j, offset); soft = sigmoid(a / tau), gate = [a > 0] or from the hard gates.
     */
    @Override
    public void routerGates(Tensor gates, Tensor soft, Tensor logits, Tensor bias, Philox noise, double tau,
                            Tensor hardGates, Tensor hardSoft) {
        CHECK.routerGates(gates, soft, logits, bias, tau, hardGates, hardSoft);
        int n = logits.rows();
        FloatBuffer g = gates.floats(), y = soft.floats(), z = logits.floats(), b = bias.floats();
        FloatBuffer hg = hardGates == null ? null : hardGates.floats(), hy = hardSoft == null ? null : hardSoft.floats();
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < 2; j++) {
                int at = j * n + i;
                float ze = z.get(4 * i + 2 * j) + b.get(2 * j), zs = z.get(4 * i + 2 * j + 1) + b.get(2 * j + 1);
                double a = ze - zs;
                if (noise != null) {
                    int[] w = philox(new int[] {i, j, (int) noise.offset(), (int) (noise.offset() >>> 32)},
                            (int) noise.key(), (int) (noise.key() >>> 32));
                    a = (ze - Math.log(-Math.log(openUniform(w[0], w[1])))) - (zs - Math.log(-Math.log(openUniform(w[2], w[3]))));
                }
                double p = 1 / (1 + Math.exp(-a / tau));
                y.put(at, (float) p);
                if (hg == null) g.put(at, a > 0 ? 1f : 0f);
                else g.put(at, hy == null ? hg.get(at) : (float) (hg.get(at) + (p - hy.get(at))));
            }
        }
    }

    /** d = (dGates + gateGrad)·s·(1 − s)/tau per gate; dLogits = ±d; dBias += column sums, summed in double. */
    @Override
    public void routerGatesBackward(Tensor dLogits, Tensor dBias, Tensor dGates, Tensor soft, float gateGrad, double tau) {
        CHECK.routerGatesBackward(dLogits, dBias, dGates, soft, tau);
        int n = dLogits.rows();
        FloatBuffer dz = dLogits.floats(), db = dBias.floats(), dg = dGates.floats(), y = soft.floats();
        double[] sums = new double[4];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < 2; j++) {
                double s = y.get(j * n + i), d = (dg.get(j * n + i) + gateGrad) * s * (1 - s) / tau;
                dz.put(4 * i + 2 * j, (float) d);
                dz.put(4 * i + 2 * j + 1, (float) -d);
                sums[2 * j] += (float) d;
                sums[2 * j + 1] -= (float) d;
            }
        }
        for (int k = 0; k < 4; k++) db.put(k, (float) (db.get(k) + sums[k]));
    }

    /** AdamUpdate's formulas, element by element in double. */
    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamUpdate u) {
        CHECK.adamw(param, grad, m, v);
        FloatBuffer p = param.floats(), gs = grad.floats(), ms = m.floats(), vs = v.floats();
        double b1 = u.beta1(), b2 = u.beta2();
        for (int i = 0; i < p.limit(); i++) {
            double g = (float) (gs.get(i) * u.gradScale());
            double mi = b1 * ms.get(i) + (1 - b1) * g;
            double vi = b2 * vs.get(i) + (1 - b2) * g * g;
            ms.put(i, (float) mi);
            vs.put(i, (float) vi);
            p.put(i, (float) (p.get(i) * u.keep() - u.stepSize() * mi / (Math.sqrt(vi) / u.sqrtCorrection2() + u.eps())));
        }
    }

    /** Σ x², element by element in double. */
    @Override
    public double sumOfSquares(List<Tensor> xs) {
        CHECK.sumOfSquares(xs);
        double sum = 0;
        for (Tensor x : xs) {
            FloatBuffer b = x.floats();
            for (int i = 0; i < b.limit(); i++) sum += (double) b.get(i) * b.get(i);
        }
        return sum;
    }

    /** Element i: dropped iff the uniform of words 0 and 1 of {@link #philox} at counter (i, offset) is below rate. */
    @Override
    public void dropoutMask(Tensor mask, double rate, Philox noise) {
        CHECK.dropoutMask(mask, rate);
        FloatBuffer m = mask.floats();
        float keep = (float) (1.0 / (1.0 - rate));
        for (long i = 0; i < mask.size(); i++) {
            int[] w = philox(new int[] {(int) i, (int) (i >>> 32), (int) noise.offset(), (int) (noise.offset() >>> 32)},
                    (int) noise.key(), (int) (noise.key() >>> 32));
            m.put((int) i, openUniform(w[0], w[1]) < rate ? 0f : keep);
        }
    }

    /**
     * Philox4x32-10 (Salmon, Moraes, Dror and Shaw, SC 2011): the four output words for a counter of four words and a
     * key of two, unsigned 32-bit arithmetic in ints.
     */
    static int[] philox(int[] counter, int key0, int key1) {
        int[] c = counter.clone();
        for (int round = 0; round < 10; round++) {
            if (round > 0) {
                key0 += 0x9E3779B9;
                key1 += 0xBB67AE85;
            }
            long p0 = 0xD2511F53L * Integer.toUnsignedLong(c[0]), p1 = 0xCD9E8D57L * Integer.toUnsignedLong(c[2]);
            c = new int[] {(int) (p1 >>> 32) ^ c[1] ^ key0, (int) p1, (int) (p0 >>> 32) ^ c[3] ^ key1, (int) p0};
        }
        return c;
    }

    /** A uniform in (0, 1) from 64 bits (hi, lo): the midpoint of one of 2^52 cells, exact in a double. */
    private static double openUniform(int hi, int lo) {
        long bits = ((long) hi << 32) | Integer.toUnsignedLong(lo);
        return ((bits >>> 12) + 0.5) * 0x1.0p-52;
    }

    /** u[n, r] = x[n, k]·a[r, k]ᵀ in double. */
    private static double[] lowRank(Tensor x, Tensor a) {
        int n = x.rows(), k = x.cols(), r = a.rows();
        FloatBuffer xs = x.floats(), as = a.floats();
        double[] u = new double[n * r];
        for (int i = 0; i < n; i++) {
            for (int t = 0; t < r; t++) {
                double sum = 0;
                for (int p = 0; p < k; p++) sum += (double) xs.get(i * k + p) * as.get(t * k + p);
                u[i * r + t] = sum;
            }
        }
        return u;
    }

    /** Pair p of each head of x[n, heads * headDim] turns by direction · positions[i] · theta^(-2p / headDim). */
    private static void rotate(Tensor x, Tensor positions, int headDim, float theta, RopeStyle style, int direction) {
        int n = x.rows(), cols = x.cols(), half = headDim / 2;
        FloatBuffer a = x.floats();
        IntBuffer pos = positions.ints();
        for (int i = 0; i < n; i++) {
            for (int head = 0; head < cols / headDim; head++) {
                int base = i * cols + head * headDim;
                for (int p = 0; p < half; p++) {
                    double angle = direction * pos.get(i) * Math.pow(theta, -2.0 * p / headDim);
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
     * The softmax over keys 0..keys-1 of q·k_t / sqrt(headDim), for the query row at qs[qBase..] and the kv head
     * whose columns start at kvOffset in rows of kvCols.
     */
    private static double[] attentionWeights(FloatBuffer qs, int qBase, FloatBuffer ks, int kvCols, int kvOffset,
                                             int keys, int headDim) {
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
        for (int t = 0; t < keys; t++) weights[t] /= sum;
        return weights;
    }

    /** dst[rows[i]] (+)= src[i] for dst[*, d], src[count, d], rows[count] */
    private static void scatter(Tensor dst, Tensor src, Tensor rows, boolean add) {
        int d = src.cols();
        FloatBuffer o = dst.floats(), a = src.floats();
        IntBuffer r = rows.ints();
        for (int i = 0; i < r.limit(); i++) {
            for (int j = 0; j < d; j++) {
                int at = r.get(i) * d + j;
                float value = a.get(i * d + j);
                o.put(at, add ? o.get(at) + value : value);
            }
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
